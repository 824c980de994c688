from unittest import mock

import pytest
from django.test import Client


def test_healthz(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_database_cache_and_broker(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok", "broker": "ok"}}


@pytest.mark.django_db
def test_readyz_reports_a_broken_part_with_503(client: Client) -> None:
    with mock.patch("core.views._check_broker", side_effect=ConnectionRefusedError("no broker")):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == "failed: ConnectionRefusedError"


@pytest.mark.django_db
def test_pages_and_assets_are_compressed_but_event_streams_are_not(alice, alice_web, discovered) -> None:  # noqa: ANN001
    from chat import services

    assert alice_web.get("/", headers={"Accept-Encoding": "gzip"})["Content-Encoding"] == "gzip"
    assert alice_web.get("/static/css/app.css", headers={"Accept-Encoding": "gzip"})["Content-Encoding"] == "gzip"
    conversation = services.conversation_create(owner=alice)
    _, answer = services.chat_send(
        conversation=conversation, content="hi", model_id=discovered["qwen/qwen2.5-7b-instruct"].pk
    )
    stream = alice_web.get(f"/chat/messages/{answer.pk}/stream/", headers={"Accept-Encoding": "gzip"})
    assert stream["Content-Type"] == "text/event-stream" and not stream.has_header("Content-Encoding")
