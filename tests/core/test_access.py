"""What an instance on a network closes: /metrics behind METRICS_TOKEN or an address allow-list, the API docs
behind login, no caching of the page that shows a token once, JSON 404s everywhere under /api/."""

import json

import pytest
from django.test import Client

from core.access import failed

pytestmark = pytest.mark.django_db


def test_metrics_are_open_by_default(client: Client) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200 and b"llm_codegen_requests_total" in response.content


def test_metrics_token(client: Client, settings) -> None:  # noqa: ANN001
    settings.METRICS_TOKEN = "scrape-me-7f3a"
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused["WWW-Authenticate"] == "Bearer"
    assert "METRICS_TOKEN" in refused.json()["detail"] and "scrape-me" not in refused.content.decode()
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me-7f3a"}).status_code == 200


def test_metrics_allow_list(client: Client, settings) -> None:  # noqa: ANN001
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "not-an-address", "192.0.2.1"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1").status_code == 200
    refused = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert refused.status_code == 403 and "detail" in refused.json()


def test_metrics_token_or_allow_list(client: Client, settings) -> None:  # noqa: ANN001
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "t0ken", ["127.0.0.1"]
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert (
        client.get("/metrics", REMOTE_ADDR="203.0.113.9", headers={"Authorization": "Bearer t0ken"}).status_code == 200
    )
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 401


@pytest.mark.parametrize("url", ["/api/docs", "/api/openapi.json"])
def test_api_docs_are_public_by_default(client: Client, url: str) -> None:
    assert client.get(url).status_code == 200


def test_api_docs_behind_login(client: Client, alice_web: Client, alice_api: Client, settings) -> None:  # noqa: ANN001
    settings.API_DOCS_LOGIN_REQUIRED = True
    page = client.get("/api/docs")
    assert page.status_code == 302 and page["Location"].startswith("/accounts/login/?next=/api/docs")
    document = client.get("/api/openapi.json")
    assert document.status_code == 401 and "detail" in document.json()
    assert client.get("/api/openapi.json", headers={"Authorization": "Bearer orch_nope"}).status_code == 401
    assert alice_web.get("/api/docs").status_code == 200
    assert alice_web.get("/api/openapi.json").json()["info"]["title"] == "AI Orchestrator"
    assert alice_api.get("/api/openapi.json").status_code == 200


def test_the_page_showing_a_new_token_is_not_cached(alice_web: Client) -> None:
    response = alice_web.post("/settings/tokens/", {"name": "laptop"})
    assert response.status_code == 200 and b"orch_" in response.content
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


@pytest.mark.parametrize("path", ["/api/", "/api/nothing", "/api/models/", "/api/codegen/runs/abc", "/api/keys/1/x/y"])
def test_unknown_api_routes_answer_json_404(alice_api: Client, path: str) -> None:
    response = alice_api.get(path)
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json() == {"detail": f"No API endpoint at {path}."}


def test_unknown_pages_keep_the_html_404(alice_web: Client) -> None:
    response = alice_web.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_a_bug_under_the_api_answers_json_500(rf) -> None:  # noqa: ANN001
    response = failed(rf.get("/api/models/x/status"))
    assert response.status_code == 500 and json.loads(response.content) == {
        "detail": "Internal error; the server log has the details."
    }
    assert failed(rf.get("/models/"))["Content-Type"].startswith("text/html")


def test_ssl_redirect_spares_the_health_checks(client: Client, settings) -> None:  # noqa: ANN001
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code in (200, 503)
    redirected = client.get("/accounts/login/")
    assert redirected.status_code == 301 and redirected["Location"] == "https://testserver/accounts/login/"
