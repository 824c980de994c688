"""Loads the shipped price table (usage/default_prices.py); rows staff already have are left alone."""

from datetime import date
from decimal import Decimal

from django.db import migrations

from usage.default_prices import AS_OF, DEFAULT_PRICES


def add_prices(apps, schema_editor) -> None:  # noqa: ANN001
    price = apps.get_model("usage", "Price")
    for kind, model_id, input_usd, output_usd, source in DEFAULT_PRICES:
        price.objects.get_or_create(
            provider_kind=kind,
            model_id=model_id,
            defaults={
                "input_per_million_usd": Decimal(input_usd),
                "output_per_million_usd": Decimal(output_usd),
                "source": source,
                "as_of": date.fromisoformat(AS_OF),
            },
        )


class Migration(migrations.Migration):
    dependencies = [("usage", "0001_initial")]
    operations = [migrations.RunPython(add_prices, migrations.RunPython.noop)]
