from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def create_default_provider(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # Base URL left empty: LMSTUDIO_BASE_URL from the environment applies, read when used.
    Provider = apps.get_model("models_mgmt", "Provider")
    Provider.objects.get_or_create(name="lmstudio", defaults={"kind": "lmstudio", "base_url": ""})


class Migration(migrations.Migration):
    dependencies = [("models_mgmt", "0001_initial")]
    operations = [migrations.RunPython(create_default_provider, migrations.RunPython.noop)]
