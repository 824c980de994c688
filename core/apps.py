from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from django.conf import settings

        from orchestrator.observability import setup_logging, setup_tracing

        setup_logging(settings.LOG_LEVEL)
        setup_tracing()
