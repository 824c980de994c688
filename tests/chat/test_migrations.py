"""Conversations made before branching become one straight branch, their titles kept as the user's."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE, AFTER = [("chat", "0001_initial")], [("chat", "0002_branches_params_preferences")]


@pytest.mark.django_db(transaction=True)
def test_existing_messages_are_chained_in_order() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    owner = old.get_model("auth", "User").objects.create(username="alice")
    conversation = old.get_model("chat", "Conversation").objects.create(owner_id=owner.pk, title="Old talk")
    Message = old.get_model("chat", "Message")
    ids = [
        Message.objects.create(conversation=conversation, role=role, content=text).pk
        for role, text in (("user", "one"), ("assistant", "Echo: one"), ("user", "two"), ("assistant", "Echo: two"))
    ]
    empty = old.get_model("chat", "Conversation").objects.create(owner_id=owner.pk)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    Message = new.get_model("chat", "Message")
    parents = dict(Message.objects.filter(pk__in=ids).values_list("pk", "parent_id"))
    assert parents == {ids[0]: None, ids[1]: ids[0], ids[2]: ids[1], ids[3]: ids[2]}
    Conversation = new.get_model("chat", "Conversation")
    migrated = Conversation.objects.get(pk=conversation.pk)
    assert migrated.leaf_id == ids[3] and migrated.title == "Old talk" and not migrated.title_is_auto
    assert Conversation.objects.get(pk=empty.pk).leaf_id is None
