"""The gateway's hot path: POST /v1/chat/completions answered straight on ASGI, without Django's request cycle
(its middleware chain runs in a thread per request and costs more than everything else the gateway does).

Everything else, and any request this path would answer differently from Django (a host not in
ALLOWED_HOSTS, plain HTTP when SECURE_SSL_REDIRECT is on), goes to Django unchanged. The answer itself is
`gateway.views.chat_reply`, the same function the Django view renders; this module only does what
Django's handler and middleware would have done around it for this endpoint: read the body within
DATA_UPLOAD_MAX_MEMORY_SIZE, add the security headers (SecurityMiddleware, XFrameOptionsMiddleware), stop
the work when the client goes away, and render JSON or an uncompressed, unbuffered event stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from gateway import openai_format as fmt
from gateway.views import KEY_HEADER, Reply, chat_reply
from orchestrator import deferred, hotcache
from orchestrator.sse import SSE_HEADERS

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PATH = "/v1/chat/completions"
_KEY_HEADER = KEY_HEADER.lower().encode()
_SSE_HEADERS = [(name.lower().encode(), value.encode()) for name, value in SSE_HEADERS.items()]


class GatewayHotPath:
    """ASGI middleware in front of Django: takes POST /v1/chat/completions, passes everything else on."""

    def __init__(self, django: ASGIApp) -> None:
        self.django = django

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "POST":
            headers = _headers(scope)
            if _ours(scope, headers):
                await _serve(scope, headers, receive, send)
                return
        await self.django(scope, receive, send)


def _headers(scope: Scope) -> dict[bytes, bytes]:
    # Later duplicates win, except that Django joins repeated headers with commas; none of ours repeat.
    return dict(scope["headers"])


def _secure(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    proxy = settings.SECURE_PROXY_SSL_HEADER
    if proxy:
        name = proxy[0].removeprefix("HTTP_").replace("_", "-").lower().encode()
        value = headers.get(name)
        if value is not None:
            return value.decode("latin-1").split(",", 1)[0].strip() == proxy[1]
    return scope.get("scheme") == "https"


def _ours(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    """Only requests Django would answer with the view itself; Django's own 400 or redirect otherwise."""
    host = headers.get(b"host", b"").decode("latin-1")
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    return not (settings.SECURE_SSL_REDIRECT and not _secure(scope, headers))


async def _read_body(receive: Receive, limit: int) -> tuple[bytes | None, bool]:
    """The whole body, or None when it is over `limit` (then the rest is read and dropped); and whether the
    client went away meanwhile."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None, True
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            parts.append(chunk)
        if not message.get("more_body", False):
            break
    return (b"".join(parts) if size <= limit else None), False


def _security_headers(secure: bool) -> list[tuple[bytes, bytes]]:
    """What SecurityMiddleware and XFrameOptionsMiddleware add to every response, by the same settings."""
    out: list[tuple[bytes, bytes]] = []
    if settings.SECURE_HSTS_SECONDS and secure:
        value = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            value += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            value += "; preload"
        out.append((b"strict-transport-security", value.encode()))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        out.append((b"x-content-type-options", b"nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        value = policy if isinstance(policy, str) else ",".join(policy)
        out.append((b"referrer-policy", value.encode()))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        out.append((b"cross-origin-opener-policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode()))
    out.append((b"x-frame-options", getattr(settings, "X_FRAME_OPTIONS", "DENY").upper().encode()))
    return out


async def _serve(scope: Scope, headers: dict[bytes, bytes], receive: Receive, send: Send) -> None:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    declared = headers.get(b"content-length", b"")
    body: bytes | None = None
    # Refused by its Content-Length without reading it, as Django does (the disconnect watcher drains it).
    if limit is None or not (declared.isdigit() and int(declared) > limit):
        body, gone = await _read_body(receive, limit if limit is not None else float("inf"))
        if gone:
            return
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    bearer = (token.strip() or None) if scheme.lower() == "bearer" else None
    key_header = headers.get(_KEY_HEADER)
    extra = _security_headers(_secure(scope, headers))

    async def answer() -> None:
        with hotcache.checked():
            reply = await chat_reply(
                bearer=bearer,
                body=body if body is not None else fmt.body_too_large(),
                key_header=None if key_header is None else key_header.decode("latin-1"),
            )
        await _send(reply, send, extra)

    # The usage records are written once the last byte is out, in the request's own task: not in the
    # answer's, which the disconnect watcher cancels (and a finished response reads as a disconnect).
    with deferred.collecting() as later:
        try:
            await _until_disconnect(answer(), receive)
        finally:
            await deferred.run(later)


async def _until_disconnect(work: Awaitable[None], receive: Receive) -> None:
    """Run `work`; if the client goes away first, cancel it (its `finally` blocks close the upstream call and
    record what it cost), as Django's handler does."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (watcher, task):
            if not pending.done():
                pending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        with contextlib.suppress(asyncio.CancelledError):
            await task  # re-raises what the work raised, so uvicorn answers 500 and logs it


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send(reply: Reply, send: Send, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(name.lower().encode(), value.encode("latin-1")) for name, value in reply.headers.items()]
    if reply.stream is None:
        payload = orjson.dumps(reply.data)
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers + extra})
        await send({"type": "http.response.body", "body": payload})
        return
    # Never compressed nor buffered: each event goes out as it comes.
    headers += _SSE_HEADERS
    stream: AsyncIterator[bytes] = reply.stream
    try:
        await send({"type": "http.response.start", "status": reply.status, "headers": headers + extra})
        async for chunk in stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        # Closed explicitly, also when the client went away (this task is cancelled then): the generator's
        # own `finally` ends the upstream call and saves the usage record.
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
