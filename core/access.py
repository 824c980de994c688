"""Who may read the instance's own descriptions of itself: /metrics (METRICS_TOKEN or METRICS_ALLOWED_IPS)
and the API docs (API_DOCS_LOGIN_REQUIRED). Open by default, as suits a laptop; a server on a network
sets them."""

import hmac
import ipaddress
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found, server_error

from accounts.services import api_token_authenticate


def _bearer(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _address_allowed(address: str, allowed: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in allowed:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue  # a malformed entry allows nothing
    return False


def metrics_refusal(request: HttpRequest) -> HttpResponse | None:
    """None when the caller may scrape /metrics, else the answer to give."""
    token, allowed = settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS
    if not token and not allowed:
        return None
    if token and hmac.compare_digest(_bearer(request).encode(), token.encode()):
        return None
    if allowed and _address_allowed(request.META.get("REMOTE_ADDR", ""), allowed):
        return None
    if token:
        response = JsonResponse(
            {"detail": "Send 'Authorization: Bearer <METRICS_TOKEN>' to read the metrics."}, status=401
        )
        response["WWW-Authenticate"] = "Bearer"
        return response
    return JsonResponse({"detail": "Metrics are not served to this address."}, status=403)


def docs_guard(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """With API_DOCS_LOGIN_REQUIRED, the docs page wants a session (else the login page) and the OpenAPI
    document a session or an API token (else a JSON 401)."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.API_DOCS_LOGIN_REQUIRED or request.user.is_authenticated:
            return view(request, *args, **kwargs)
        raw = _bearer(request)
        if raw and api_token_authenticate(raw=raw) is not None:
            return view(request, *args, **kwargs)
        if request.path.endswith(".json"):
            response = JsonResponse(
                {"detail": "Log in or send an API token to read the API's description."}, status=401
            )
            response["WWW-Authenticate"] = "Bearer"
            return response
        return redirect_to_login(request.get_full_path())

    return guarded


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404 handler: under /api/ the JSON error every API answer uses, elsewhere the usual page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"No API endpoint at {request.path}."}, status=404)
    return page_not_found(request, exception)


def failed(request: HttpRequest) -> HttpResponse:
    """Django's 500 handler: a bug under /api/ still answers JSON (with nothing of the exception in it)."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Internal error; the server log has the details."}, status=500)
    return server_error(request)
