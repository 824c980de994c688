from django.contrib import admin

from usage.models import Budget, Price, UsageRecord


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = ("provider_kind", "model_id", "input_per_million_usd", "output_per_million_usd", "as_of")
    list_filter = ("provider_kind",)
    search_fields = ("model_id",)


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    list_display = ("__str__", "requests_per_minute", "tokens_per_day", "cost_per_month_usd", "updated_at")

    def save_model(self, request: object, obj: Budget, form: object, change: bool) -> None:
        obj.is_default = obj.user_id is None  # a row without a user is the instance default
        super().save_model(request, obj, form, change)


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = ("created_at", "user", "kind", "model", "outcome", "prompt_tokens", "completion_tokens", "cost_usd")
    list_filter = ("kind", "outcome")
    search_fields = ("model", "user__username")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: object) -> bool:
        return False  # records are written by the completion service only

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
