"""The migration carries existing data over: every existing key becomes its owner's default; a user's
OpenAI-compatible server becomes private to that user (a second user on it gets a private copy, with their key
sealed anew); settings' providers and servers only shared keys use stay instance-wide."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from providers import crypto

BEFORE = [("providers", "0002_owners_and_default_keys"), ("models_mgmt", "0005_model_owners_and_public_errors")]


@pytest.mark.django_db(transaction=True)
def test_existing_servers_become_private_to_their_users() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    User = apps.get_model("auth", "User")
    Provider = apps.get_model("providers", "Provider")
    ApiKey = apps.get_model("providers", "ApiKey")
    AIModel = apps.get_model("models_mgmt", "AIModel")
    alice = User.objects.create(username="alice")
    charlie = User.objects.create(username="charlie")
    openai = Provider.objects.create(kind="openai", name="openai-m", base_url="")
    box = Provider.objects.create(kind="openai_compatible", name="box", base_url="https://box.example/v1")
    team = Provider.objects.create(kind="openai_compatible", name="team", base_url="https://team.example/v1")
    AIModel.objects.create(provider=box, model_id="llama")

    def key(owner: object, provider: object, raw: str) -> object:
        owner_id = owner.pk if owner else None
        sealed = crypto.encrypt(raw, aad=crypto.associated_data(owner_id, provider.pk))
        return ApiKey.objects.create(owner=owner, provider=provider, label="k", secret=sealed, hint="x")

    key(alice, openai, "sk-alice-openai-1")
    key(alice, box, "sk-alice-box-0001")
    charlie_key = key(charlie, box, "sk-charlie-box-02")
    key(None, team, "sk-team-shared-03")

    executor = MigrationExecutor(connection)
    # Forward to the latest of every app, not just this migration: going back to BEFORE also undid the later
    # migrations of models_mgmt, and the tests after this one need the whole schema.
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(latest)
    apps = executor.loader.project_state(latest).apps
    Provider = apps.get_model("providers", "Provider")
    ApiKey = apps.get_model("providers", "ApiKey")
    AIModel = apps.get_model("models_mgmt", "AIModel")

    assert ApiKey.objects.filter(is_default=False).count() == 0
    assert Provider.objects.get(name="openai-m").owner_id is None
    assert Provider.objects.get(name="team").owner_id is None
    box = Provider.objects.get(name="box")
    assert box.owner_id == alice.pk and AIModel.objects.get(model_id="llama").owner_id == alice.pk
    moved = ApiKey.objects.get(pk=charlie_key.pk)
    copy = Provider.objects.get(pk=moved.provider_id)
    assert copy.owner_id == charlie.pk and copy.base_url == box.base_url and copy.pk != box.pk
    assert crypto.decrypt(moved.secret, aad=crypto.associated_data(charlie.pk, copy.pk)) == "sk-charlie-box-02"
