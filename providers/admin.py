from django.contrib import admin

from providers.models import ApiKey, Provider


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "base_url", "owner", "enabled", "priority"]
    list_editable = ["enabled", "priority"]
    list_filter = ["kind", "enabled"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Read-only: a key is entered on the API-keys page, where it is encrypted; the admin never shows it."""

    list_display = ["provider", "owner", "label", "hint", "is_default", "last_test_ok", "last_tested_at"]
    list_filter = ["provider"]
    exclude = ["secret"]
    readonly_fields = [
        "owner",
        "provider",
        "label",
        "is_default",
        "hint",
        "created_at",
        "updated_at",
        "last_tested_at",
        "last_test_ok",
        "last_test_detail",
        "last_test_latency_ms",
        "failing_reason",
    ]

    def has_add_permission(self, request: object) -> bool:
        return False
