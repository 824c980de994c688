from django.apps import AppConfig


class CodegenConfig(AppConfig):
    name = "codegen"
    verbose_name = "Code generation"

    def ready(self) -> None:
        # Registers the Celery tasks in every process (web included), so services can enqueue them by name
        # without importing the task module, which imports them.
        from codegen import tasks  # noqa: F401
