from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"
    verbose_name = "Usage, prices and budgets"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from orchestrator import hotcache
        from usage.models import Budget, BudgetCounter

        # Whether a user has a counter row is cached (usage.services._counter_exists), and so are the limits
        # that apply to each user (usage.services.limits_for).
        hotcache.watch_rows({BudgetCounter._meta.db_table})
        hotcache.watch({Budget._meta.db_table})
