from django.conf import settings
from django.db import models
from django.db.models import Q

from providers.models import Provider


class ModelSource(models.TextChoices):
    DISCOVERED = "discovered", "Discovered from the server"
    MANUAL = "manual", "Added by hand"
    NAMED = "named", "Named in a request before any listing"


class LoadState(models.TextChoices):
    IDLE = "idle", "Idle"
    LOADING = "loading", "Loading"
    FAILED = "failed", "Load failed"


class AIModel(models.Model):
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="models")
    model_id = models.CharField(max_length=255, help_text="The model's id as the provider names it.")
    display_name = models.CharField(max_length=255, blank=True)
    model_type = models.CharField(max_length=32, blank=True, help_text="llm, vlm, embedding…")
    context_length = models.PositiveIntegerField(null=True, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    active = models.BooleanField(default=True)
    priority = models.IntegerField(default=0, help_text="Higher is preferred when suggesting alternatives.")
    source = models.CharField(max_length=16, choices=ModelSource.choices, default=ModelSource.MANUAL)
    # Empty: instance-wide. A user: an entry only that user sees, listed by their own key, named by them on
    # first use, or on their private provider. Users other than staff never add to the instance-wide list.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="own_models"
    )

    # A load runs in a worker process; its progress lives here so every process sees it.
    load_state = models.CharField(max_length=16, choices=LoadState.choices, default=LoadState.IDLE)
    load_started_at = models.DateTimeField(null=True, blank=True)
    load_error = models.TextField(blank=True)
    # Who holds a load claim: the Celery task id (chosen when the claim is made) and the worker life that
    # runs it ("<node name>#<life>", set when the task starts), so a restarted worker can tell its earlier
    # life's claims, whose tasks died with it, from a load another live worker is running.
    load_task_id = models.CharField(max_length=64, blank=True)
    load_worker = models.CharField(max_length=255, blank=True)
    # Bumped when this app changes what the server holds (load finished, unload), so a cached snapshot
    # of the server taken before that moment is known to be stale.
    state_changed_at = models.DateTimeField(null=True, blank=True)

    failure_count = models.PositiveIntegerField(default=0)
    cooldown_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, help_text="The upstream's own words: for staff and the owner.")
    last_error_public = models.CharField(
        max_length=300, blank=True, help_text="The same failure in generic words, for everyone else."
    )

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-priority", "display_name", "model_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "model_id"], condition=Q(owner__isnull=True), name="unique_model_per_provider"
            ),
            models.UniqueConstraint(
                fields=["provider", "model_id", "owner"],
                condition=Q(owner__isnull=False),
                name="unique_private_model_per_provider",
            ),
        ]

    def __str__(self) -> str:
        return self.ref

    @property
    def ref(self) -> str:
        return f"{self.provider.name}/{self.model_id}"

    @property
    def name(self) -> str:
        return self.display_name or self.model_id

    @property
    def is_local(self) -> bool:
        return self.provider.is_local

    @property
    def can_chat(self) -> bool:
        return "embed" not in self.model_type
