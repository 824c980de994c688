"""Usage records (one per upstream model call), the price table, per-user budgets and the counters that
enforce them. The counters live in the database so that every process (web servers, the Celery worker)
shares them in every lane, SQLite included; one conditional UPDATE admits or refuses a call atomically."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q


class RequestKind(models.TextChoices):
    CHAT = "chat", "Chat"
    API = "api", "REST API"
    GATEWAY = "gateway", "OpenAI gateway"
    CODEGEN = "codegen", "Code generation"
    TESTGEN = "testgen", "Test-generation run"
    BACKEND = "backend", "Backend generator"


class UsageRecord(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="usage_records"
    )
    created_at = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=16, choices=RequestKind.choices)
    # The model that answered (or was asked, for a failed call), as `<provider>/<model id>`; kept as text so
    # a record outlives the model's row.
    model = models.CharField(max_length=400)
    provider = models.CharField(max_length=64)
    provider_private = models.BooleanField(default=False)
    key = models.ForeignKey("providers.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    # True when the provider reported no usage and the tokens are our estimate (about 4 characters a token).
    estimated = models.BooleanField(default=False)
    latency_ms = models.PositiveIntegerField(default=0)
    first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=40, help_text="ok, cancelled (stopped), or the error code.")
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal(0))

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.model} {self.outcome}"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Price(models.Model):
    """What a model costs, per million tokens. Keyed by the provider's kind and the model id as the provider
    names it, so every provider of that kind (and every user's named model) shares it."""

    provider_kind = models.CharField(max_length=32)
    model_id = models.CharField(max_length=300)
    input_per_million_usd = models.DecimalField(max_digits=12, decimal_places=6)
    output_per_million_usd = models.DecimalField(max_digits=12, decimal_places=6)
    source = models.CharField(max_length=500, blank=True, help_text="Where the figure comes from.")
    as_of = models.DateField(null=True, blank=True, help_text="The date the figure was read; prices change.")

    class Meta:
        ordering = ["provider_kind", "model_id"]
        constraints = [models.UniqueConstraint(fields=["provider_kind", "model_id"], name="one_price_per_model")]

    def __str__(self) -> str:
        return f"{self.provider_kind}/{self.model_id}"


class Budget(models.Model):
    """A user's limits, or (user empty) the instance default for users without a row. Empty = unlimited."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="budget"
    )
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_day = models.PositiveBigIntegerField(null=True, blank=True)
    cost_per_month_usd = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    # Set on the instance default's row only: NULL users are distinct in a unique index, this flag is not.
    is_default = models.BooleanField(default=False, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="one_default_budget"),
            models.CheckConstraint(
                condition=Q(is_default=True, user__isnull=True) | Q(is_default=False, user__isnull=False),
                name="default_budget_has_no_user",
            ),
        ]

    def __str__(self) -> str:
        return f"budget of {self.user}" if self.user_id else "instance default budget"


class BudgetCounter(models.Model):
    """What a user has spent in the current minute, day and month (UTC). Windows roll over inside the
    admitting UPDATE itself: a stored window that is not the current one counts as zero."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    minute = models.BigIntegerField(default=0)  # epoch minute
    minute_requests = models.PositiveIntegerField(default=0)
    day = models.IntegerField(default=0)  # yyyymmdd
    day_tokens = models.BigIntegerField(default=0)
    month = models.IntegerField(default=0)  # yyyymm
    month_cost_micro_usd = models.BigIntegerField(default=0)
