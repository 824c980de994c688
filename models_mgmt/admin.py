from django.contrib import admin

from models_mgmt.models import AIModel


@admin.register(AIModel)
class AIModelAdmin(admin.ModelAdmin):
    list_display = ["model_id", "provider", "display_name", "model_type", "active", "priority", "load_state"]
    list_editable = ["active", "priority"]
    list_filter = ["provider", "active", "source", "model_type"]
    search_fields = ["model_id", "display_name"]
    readonly_fields = [
        "load_state",
        "load_started_at",
        "load_error",
        "load_task_id",
        "load_worker",
        "state_changed_at",
        "failure_count",
        "cooldown_until",
        "last_error",
        "last_error_public",
        "owner",
        "created_at",
    ]
