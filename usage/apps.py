from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"
    verbose_name = "Usage, prices and budgets"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from orchestrator import hotcache
        from usage.models import BudgetCounter

        # Whether a user has a counter row is cached (usage.services._counter_exists).
        hotcache.watch_rows({BudgetCounter._meta.db_table})
