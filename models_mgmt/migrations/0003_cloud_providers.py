from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

CLOUD = [("openai", "openai"), ("anthropic", "anthropic"), ("google", "gemini"), ("mistral", "mistral"),
         ("genspark", "genspark")]


def create_cloud_providers(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # Base URLs empty: the *_BASE_URL settings apply. Their models appear once a key lists them.
    Provider = apps.get_model("models_mgmt", "Provider")
    for kind, name in CLOUD:
        Provider.objects.get_or_create(name=name, defaults={"kind": kind, "base_url": ""})


class Migration(migrations.Migration):
    dependencies = [("models_mgmt", "0002_default_lmstudio_provider")]
    operations = [migrations.RunPython(create_cloud_providers, migrations.RunPython.noop)]
