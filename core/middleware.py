import json
import re
import secrets
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.gzip import GZipMiddleware, re_accepts_gzip
from django.utils.cache import patch_vary_headers

from orchestrator.renderers import SentAgain
from orchestrator.text import unstorable_reason

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
        body: SentAgain | None = getattr(response, "sent_again", None)
        if body is None or response.streaming or response.has_header("Content-Encoding") or len(body.content) < 200:
            return super().process_response(request, response)
        if response.content != body.content:  # changed since the view made it: compress what goes out
            return super().process_response(request, response)
        # What Django's own step does for a whole body, with the body's gzip made once (SentAgain).
        patch_vary_headers(response, ("Accept-Encoding",))
        if not re_accepts_gzip.search(request.META.get("HTTP_ACCEPT_ENCODING", "")):
            return response
        gzipped = body.gzipped(self.max_random_bytes)
        if len(gzipped) >= len(body.content):
            return response
        response.content = gzipped
        response.headers["Content-Length"] = str(len(gzipped))
        etag = response.get("ETag")
        if etag and etag.startswith('"'):
            response.headers["ETag"] = "W/" + etag
        response.headers["Content-Encoding"] = "gzip"
        return response


# A NUL or a lone surrogate, as JSON writes them (or raw): only a body that has one is parsed again.
_SUSPECT = re.compile(rb"\\u0000|\\u[dD][89a-fA-F][0-9a-fA-F]{2}|\x00")


def _first_unstorable(value: object) -> str | None:
    if isinstance(value, str):
        return unstorable_reason(value)
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, list):
        for item in value:
            if reason := _first_unstorable(item):
                return reason
    return None


class StorableTextMiddleware:
    """Refuses API requests carrying text no database of ours can store or look up (a NUL, a lone surrogate)
    with a clear 400, in one place, before any view builds a query from it: PostgreSQL raises on a NUL in
    any string parameter, and neither database can encode a lone surrogate."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith("/api/"):
            reason = self._problem(request)
            if reason:
                return JsonResponse(
                    {"detail": f"The request contains {reason}; remove it and send it again."}, status=400
                )
        return self.get_response(request)

    @staticmethod
    def _problem(request: HttpRequest) -> str | None:
        if reason := unstorable_reason(request.path_info) or _first_unstorable(
            [item for pair in request.GET.lists() for item in (pair[0], *pair[1])]
        ):
            return reason
        length = request.META.get("CONTENT_LENGTH") or ""
        if not length.isdigit() or not 0 < int(length) <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return None  # nothing to read, or too big: the usual handling answers that
        if request.content_type != "application/json" or not _SUSPECT.search(request.body):
            return None
        try:
            data = json.loads(request.body)
        except ValueError:
            return None  # not JSON: the API answers that itself
        return _first_unstorable(data)
