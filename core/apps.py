from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.db.backends.signals import connection_created

        from accounts.models import ApiToken
        from models_mgmt.models import AIModel
        from orchestrator import hotcache
        from orchestrator.observability import setup_logging, setup_tracing
        from providers.models import ApiKey, Provider

        setup_logging(settings.LOG_LEVEL)
        setup_tracing()
        # The rows the gateway's in-process caches are made from (orchestrator/hotcache.py).
        hotcache.watch({m._meta.db_table for m in (get_user_model(), ApiToken, AIModel, ApiKey, Provider)})
        connection_created.connect(hotcache.install, dispatch_uid="hotcache")
