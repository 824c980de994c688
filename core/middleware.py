import secrets
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.middleware.gzip import GZipMiddleware

# No inline script without the per-response nonce, images only from here (a model's answer must not
# make the browser fetch anything), no framing, forms post only here.
POLICY = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.csp_nonce = secrets.token_urlsafe(16)
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html"):
            response.setdefault("Content-Security-Policy", POLICY.format(nonce=request.csp_nonce))
        return response


def csp_nonce(request: HttpRequest) -> dict[str, str]:
    """For {% htmx_script %}, which puts the nonce on its script tags."""
    return {"csp_nonce": getattr(request, "csp_nonce", "")}


class GZipExceptEventStreamMiddleware(GZipMiddleware):
    """Pages, assets and JSON are compressed (the chat page's first load shrinks about fourfold); server-sent
    event streams are not, because compressing them means buffering, and each event must go out at once."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if response.get("Content-Type", "").startswith("text/event-stream"):
            return response
        return super().process_response(request, response)
