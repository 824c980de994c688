from django.apps import AppConfig


class ModelsMgmtConfig(AppConfig):
    name = "models_mgmt"
    verbose_name = "Models"

    def ready(self) -> None:
        # Registers the Celery tasks in every process (web included), so services can enqueue them by name
        # without importing the task module, which imports them. Models are importable only from here on.
        from celery.signals import worker_ready

        from models_mgmt import tasks

        # A worker that starts ends the load claims its earlier life left behind (tasks.on_worker_ready).
        worker_ready.connect(tasks.on_worker_ready, dispatch_uid="models_mgmt.recover_load_claims")
