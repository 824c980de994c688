# The Provider and ApiKey tables move into this app unchanged: only Django's idea of which app owns them
# changes, so every operation here is state-only (the tables keep their names through Meta.db_table).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("models_mgmt", "0003_cloud_providers"),
        ("apikeys", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Provider",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("kind", models.CharField(choices=[("lmstudio", "LM Studio"), ("openai", "OpenAI"), ("anthropic", "Anthropic"), ("google", "Google Gemini"), ("mistral", "Mistral"), ("genspark", "Genspark"), ("openai_compatible", "OpenAI-compatible")], max_length=32)),
                        ("name", models.SlugField(help_text="First part of a model's public reference: <name>/<model id>.", max_length=64, unique=True)),
                        ("base_url", models.URLField(blank=True, help_text="Empty: the default from the environment.")),
                        ("enabled", models.BooleanField(default=True)),
                        ("priority", models.IntegerField(default=0, help_text="Higher is preferred.")),
                    ],
                    options={"db_table": "models_mgmt_provider", "ordering": ["-priority", "name"]},
                ),
                migrations.CreateModel(
                    name="ApiKey",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("label", models.CharField(max_length=100)),
                        ("secret", models.TextField(help_text="Versioned AES-GCM token; never the key itself.")),
                        ("hint", models.CharField(help_text="The masked key, e.g. sk-…abcd.", max_length=32)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        ("last_tested_at", models.DateTimeField(blank=True, null=True)),
                        ("last_test_ok", models.BooleanField(blank=True, null=True)),
                        ("last_test_detail", models.TextField(blank=True)),
                        ("last_test_latency_ms", models.PositiveIntegerField(blank=True, null=True)),
                        ("failing_reason", models.TextField(blank=True)),
                        ("owner", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="provider_keys", to=settings.AUTH_USER_MODEL)),
                        ("provider", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="keys", to="providers.provider")),
                    ],
                    options={
                        "db_table": "apikeys_apikey",
                        "ordering": ["provider__name", "owner_id"],
                        "constraints": [
                            models.UniqueConstraint(condition=models.Q(("owner__isnull", False)), fields=("owner", "provider"), name="one_key_per_owner_provider"),
                            models.UniqueConstraint(condition=models.Q(("owner__isnull", True)), fields=("provider",), name="one_shared_key"),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
