from django.apps import AppConfig


class ApikeysConfig(AppConfig):
    name = "apikeys"
    verbose_name = "Provider API keys"

    def ready(self) -> None:
        from apikeys import checks  # noqa: F401 - registers the KEY_ENCRYPTION_KEYS system check
