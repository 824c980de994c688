# Existing data under the new rules:
# - every existing key was its owner's only key for its provider, so it becomes that owner's default;
# - an OpenAI-compatible server a user added with their key becomes private to that user. If several users
#   had keys on one such server, the first keeps it and each other user gets a private copy of their own
#   (their keys move there), so nobody sees another's server. A server only shared keys use stays
#   instance-wide, as does every provider from the settings.

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

from providers import crypto


def carry_over(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Provider = apps.get_model("providers", "Provider")
    ApiKey = apps.get_model("providers", "ApiKey")
    AIModel = apps.get_model("models_mgmt", "AIModel")
    ApiKey.objects.update(is_default=True)
    for provider in Provider.objects.filter(kind="openai_compatible").exclude(base_url=""):
        owners = list(
            ApiKey.objects.filter(provider=provider, owner__isnull=False)
            .order_by("created_at")
            .values_list("owner_id", flat=True)
            .distinct()
        )
        if not owners or ApiKey.objects.filter(provider=provider, owner__isnull=True).exists():
            continue
        first, others = owners[0], list(dict.fromkeys(owners[1:]))
        provider.owner_id = first
        provider.save(update_fields=["owner"])
        AIModel.objects.filter(provider=provider).update(owner_id=first)
        for owner_id in others:
            if owner_id == first:
                continue
            name, n = f"{provider.name}-u{owner_id}", 1
            while Provider.objects.filter(name=name).exists():
                n += 1
                name = f"{provider.name}-u{owner_id}-{n}"
            copy = Provider.objects.create(
                kind=provider.kind, name=name, base_url=provider.base_url, enabled=provider.enabled, owner_id=owner_id
            )
            # A key's ciphertext is bound to its owner and provider, so moving it means sealing it again.
            for key in ApiKey.objects.filter(provider=provider, owner_id=owner_id):
                try:
                    raw = crypto.decrypt(key.secret, aad=crypto.associated_data(owner_id, provider.pk))
                except crypto.DecryptError:
                    raw = None  # unreadable before as after: the page asks to re-enter it
                if raw is not None:
                    key.secret = crypto.encrypt(raw, aad=crypto.associated_data(owner_id, copy.pk))
                key.provider_id = copy.pk
                key.save(update_fields=["secret", "provider"])


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0002_owners_and_default_keys"),
        ("models_mgmt", "0005_model_owners_and_public_errors"),
    ]
    operations = [migrations.RunPython(carry_over, migrations.RunPython.noop)]
