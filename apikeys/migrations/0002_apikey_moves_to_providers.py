# ApiKey now lives in the providers app (same table); this app forgets it without touching the database.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("apikeys", "0001_initial"), ("providers", "0001_initial")]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="ApiKey")], database_operations=[]),
    ]
