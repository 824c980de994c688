# Provider now lives in the providers app (same table): AIModel points there, and this app forgets its own
# copy. State only; the database keeps its table and foreign key as they are.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("models_mgmt", "0003_cloud_providers"),
        ("providers", "0001_initial"),
        ("apikeys", "0002_apikey_moves_to_providers"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="aimodel",
                    name="provider",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="models", to="providers.provider"),
                ),
                migrations.DeleteModel(name="Provider"),
            ],
            database_operations=[],
        ),
    ]
