"""Liveness and readiness for process supervisors and load balancers."""

import uuid

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

from core.access import metrics_refusal
from models_mgmt.services import model_list_with_status
from orchestrator.celery import app as celery_app
from orchestrator.observability import MODEL_STATUS, metrics_exposition


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_cache() -> None:
    key, value = f"readyz:{uuid.uuid4().hex}", uuid.uuid4().hex
    cache.set(key, value, 5)
    if cache.get(key) != value:
        raise RuntimeError("the cache did not return what was stored")
    cache.delete(key)


def _check_broker() -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {}
    for name, check in (("database", _check_database), ("cache", _check_cache), ("broker", _check_broker)):
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; its kind is the message
            checks[name] = f"failed: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition. Model statuses are read at scrape time (cached, one question per server)."""
    if (refusal := metrics_refusal(request)) is not None:
        return refusal
    MODEL_STATUS.clear()
    # As an anonymous caller sees them: instance-wide models only, never a user's private ones.
    for status in model_list_with_status():
        MODEL_STATUS.labels(status.model.ref, status.status).set(1)
    body, content_type = metrics_exposition()
    return HttpResponse(body, content_type=content_type)
