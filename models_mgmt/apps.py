from django.apps import AppConfig


class ModelsMgmtConfig(AppConfig):
    name = "models_mgmt"
    verbose_name = "Models"
