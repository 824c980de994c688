from django.contrib import admin

from apikeys.models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Read-only: a key is entered on the API-keys page, where it is encrypted; the admin never shows it."""

    list_display = ["provider", "owner", "label", "hint", "last_test_ok", "last_tested_at"]
    list_filter = ["provider"]
    exclude = ["secret"]
    readonly_fields = [
        "owner",
        "provider",
        "label",
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
