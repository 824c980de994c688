"""Providers (every upstream the app talks to) and the keys that open them.

A provider is instance-wide (owner empty: from the settings, or created by staff) or private to the user
who created it (a server of their own). Keys belong to a user, or are shared (owner empty, staff only)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from providers.kinds import ProviderKind
from providers.registry import spec_of


class Provider(models.Model):
    kind = models.CharField(max_length=32, choices=ProviderKind.choices)
    name = models.SlugField(
        max_length=64, unique=True, help_text="First part of a model's public reference: <name>/<model id>."
    )
    base_url = models.URLField(blank=True, max_length=2000, help_text="Empty: the default from the environment.")
    enabled = models.BooleanField(default=True)
    priority = models.IntegerField(default=0, help_text="Higher is preferred.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="own_providers",
        help_text="Empty: instance-wide. A user: private to that user (their models, status and errors too).",
    )

    class Meta:
        db_table = "models_mgmt_provider"  # the table predates this app
        ordering = ["-priority", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_local(self) -> bool:
        return spec_of(self.kind).is_local

    @property
    def load_options(self) -> frozenset[str]:
        """The load options (providers.runtimes.LoadOptions fields) its server lets a load choose."""
        runtime = spec_of(self.kind).runtime
        return runtime.load_options if runtime is not None else frozenset()

    @property
    def can_download(self) -> bool:
        """Its server downloads models when asked (LM Studio 0.4+)."""
        runtime = spec_of(self.kind).runtime
        return runtime is not None and runtime.can_download

    @property
    def is_private(self) -> bool:
        return self.owner_id is not None

    @property
    def guarded(self) -> bool:
        """Connections to a private provider of a non-staff user go through the outbound guard: its URL was
        typed by someone the instance does not trust to reach its internal network."""
        return self.owner_id is not None and not self.owner.is_staff

    @property
    def effective_base_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        setting = spec_of(self.kind).base_url_setting
        return str(getattr(settings, setting, "") if setting else "").rstrip("/")


class ApiKey(models.Model):
    """A provider key, encrypted (providers.crypto). No owner means shared: usable by every user who has
    none of their own, managed by staff only. A user may hold several per provider; one is the default."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="provider_keys"
    )
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="keys")
    label = models.CharField(max_length=100)
    is_default = models.BooleanField(default=False, help_text="Used unless a request names another key.")
    secret = models.TextField(help_text="Versioned AES-GCM token; never the key itself.")
    hint = models.CharField(max_length=32, help_text="The masked key, e.g. sk-…abcd.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_tested_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True, blank=True)
    last_test_detail = models.TextField(blank=True)
    last_test_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    # Set when the provider refuses the key (401/403, invalid key, quota) in a test or a call; cleared by a
    # passing test or call. It marks this key, for its owner: never the model for everybody.
    failing_reason = models.TextField(blank=True)

    class Meta:
        db_table = "apikeys_apikey"  # the table predates this app
        ordering = ["provider__name", "owner_id", "-is_default", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "provider"],
                condition=Q(owner__isnull=False, is_default=True),
                name="one_default_key_per_owner_provider",
            ),
            models.UniqueConstraint(
                fields=["provider"], condition=Q(owner__isnull=True, is_default=True), name="one_default_shared_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider.name} key {self.hint}"

    @property
    def shared(self) -> bool:
        return self.owner_id is None
