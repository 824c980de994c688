from django.apps import AppConfig


class ModelsMgmtConfig(AppConfig):
    name = "models_mgmt"
    verbose_name = "Models"

    def ready(self) -> None:
        # Registers the Celery tasks in every process (web included), so services can enqueue them by name
        # without importing the task module, which imports them.
        from models_mgmt import tasks  # noqa: F401
