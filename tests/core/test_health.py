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
