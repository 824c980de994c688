from django.conf import settings
from django.db import models
from django.db.models import Q

from models_mgmt.models import Provider


class ApiKey(models.Model):
    """A provider key, encrypted (apikeys.crypto). No owner means shared: usable by every user who has
    none of their own, managed by staff only."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="provider_keys"
    )
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="keys")
    label = models.CharField(max_length=100)
    secret = models.TextField(help_text="Versioned AES-GCM token; never the key itself.")
    hint = models.CharField(max_length=32, help_text="The masked key, e.g. sk-…abcd.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_tested_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True, blank=True)
    last_test_detail = models.TextField(blank=True)
    last_test_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    # Set when the provider refuses the key (401/403) in a test or a call; cleared by a passing test.
    failing_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["provider__name", "owner_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "provider"], condition=Q(owner__isnull=False), name="one_key_per_owner_provider"
            ),
            models.UniqueConstraint(fields=["provider"], condition=Q(owner__isnull=True), name="one_shared_key"),
        ]

    def __str__(self) -> str:
        return f"{self.provider.name} key {self.hint}"

    @property
    def shared(self) -> bool:
        return self.owner_id is None
