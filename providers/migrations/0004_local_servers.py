# Ollama and llama.cpp join LM Studio as local servers: each gets its instance-wide provider, whose base URL
# is left empty so that OLLAMA_BASE_URL / LLAMACPP_BASE_URL from the environment apply, read when used.

from django.apps.registry import Apps
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

LOCAL_SERVERS = [("ollama", "ollama"), ("llamacpp", "llamacpp")]


def create_local_servers(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Provider = apps.get_model("providers", "Provider")
    for kind, name in LOCAL_SERVERS:
        if Provider.objects.filter(kind=kind, owner__isnull=True).exists():
            continue
        # A user may already have named a server of theirs so: the instance's own takes a free name instead.
        free, n = name, 1
        while Provider.objects.filter(name=free).exists():
            n += 1
            free = f"{name}-{n}"
        Provider.objects.create(name=free, kind=kind, base_url="")


class Migration(migrations.Migration):

    dependencies = [
        ('providers', '0003_carry_over_owners'),
    ]

    operations = [
        migrations.AlterField(
            model_name='provider',
            name='kind',
            field=models.CharField(choices=[('lmstudio', 'LM Studio'), ('ollama', 'Ollama'), ('llamacpp', 'llama.cpp'), ('openai', 'OpenAI'), ('anthropic', 'Anthropic'), ('google', 'Google Gemini'), ('mistral', 'Mistral'), ('genspark', 'Genspark'), ('openai_compatible', 'OpenAI-compatible')], max_length=32),
        ),
        migrations.RunPython(create_local_servers, migrations.RunPython.noop),
    ]
