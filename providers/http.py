"""The one place outbound HTTP leaves the app: a pooled httpx client per upstream, created once.

A client for an upstream a user typed (a private provider) is *guarded*: its connections go through the
outbound guard, which resolves the host itself and refuses internal addresses at connection time."""

import asyncio
import threading
import weakref
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
from django.conf import settings

from providers import guard


def display_url(url: str) -> str:
    """A base URL as it may be shown to anyone: without user name, password, query or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(an invalid URL)"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")).rstrip("/")


_clients: dict[tuple[str, bool], httpx.Client] = {}
_lock = threading.Lock()


def _timeout() -> httpx.Timeout:
    return httpx.Timeout(settings.UPSTREAM_READ_TIMEOUT, connect=settings.UPSTREAM_CONNECT_TIMEOUT)


def upstream_client(base_url: str, *, guarded: bool = False) -> httpx.Client:
    """A keep-alive client for one upstream; reused so every call does not pay a new TCP handshake."""
    key = (base_url.rstrip("/"), guarded)
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = httpx.Client(
                    base_url=key[0],
                    timeout=_timeout(),
                    follow_redirects=False,
                    transport=guard.guarded_transport() if guarded else None,
                    trust_env=not guarded,
                )
                _clients[key] = client
    return client


def close_upstream_clients() -> None:
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


# An httpx.AsyncClient (and the aiohttp session under it) belongs to the event loop it first ran on; one pool
# per loop and upstream.
_async_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, bool], httpx.AsyncClient]]" = (
    weakref.WeakKeyDictionary()
)
# Per loop, the suspended generator that closes its clients (see _closed_with_loop).
_closers: dict[int, AsyncGenerator[None, None]] = {}


async def _closed_with_loop(loop: asyncio.AbstractEventLoop) -> AsyncGenerator[None, None]:
    """Stays suspended while its loop runs. asyncio.run (which uvicorn and asgiref's async_to_sync use for their
    loops) closes the suspended async generators before it closes the loop, and that closes the loop's clients
    there: an aiohttp session left open would be reported as unclosed when collected."""
    try:
        yield
    finally:
        for client in (_async_clients.pop(loop, None) or {}).values():
            await client.aclose()
        _closers.pop(id(loop), None)


def _watch(loop: asyncio.AbstractEventLoop) -> None:
    closer = _closed_with_loop(loop)
    try:
        # Its first step registers it with the running loop (asyncgen hooks) and runs it to the `yield`.
        closer.__anext__().send(None)
    except StopIteration:
        pass
    _closers[id(loop)] = closer


def upstream_async_client(base_url: str, *, guarded: bool = False) -> httpx.AsyncClient:
    """The pooled async client for one upstream on the running loop. Per-request timeouts are set by
    the caller: a model's first byte and a key test want very different ones."""
    loop = asyncio.get_running_loop()
    per_loop = _async_clients.get(loop)
    if per_loop is None:
        per_loop = _async_clients[loop] = {}
        _watch(loop)
    key = (base_url.rstrip("/"), guarded)
    client = per_loop.get(key)
    if client is None or client.is_closed:
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
        client = httpx.AsyncClient(
            base_url=key[0],
            timeout=_timeout(),
            limits=limits,
            follow_redirects=False,
            transport=guard.guarded_async_transport(limits=limits)
            if guarded
            else guard.http_async_transport(limits=limits),
            trust_env=not guarded,
        )
        per_loop[key] = client
    return client


# The full URL of each (client, path, query), joined once: httpx's build_request parses a URL three times per
# request (the path, the join with base_url, the query), which was the costliest part of an upstream call made
# on the hot path. Bounded, since a path may name a model.
_urls: dict[tuple[str, str, tuple[tuple[str, str], ...]], httpx.URL] = {}
_MAX_URLS = 4096


def upstream_request(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    query: dict[str, str] | None,
    headers: dict[str, str],
    body: Any,
    timeout: httpx.Timeout,
) -> httpx.Request:
    """What `client.build_request(method, path, json=body, params=query, headers=headers, timeout=timeout)`
    builds, for less: the URL joined once (by the client's own rules) and the body written by orjson. The
    client's cookie jar is not sent: it is shared by every caller of this upstream."""
    key = (str(client.base_url), path, tuple(sorted(query.items())) if query else ())
    url = _urls.get(key)
    if url is None:
        if len(_urls) >= _MAX_URLS:
            _urls.clear()
        url = _urls[key] = client.build_request(method, path, params=query).url
    merged = httpx.Headers(client.headers)
    merged.update(headers)
    content = None
    if body is not None:
        content = orjson.dumps(body)
        merged["Content-Type"] = "application/json"
    return httpx.Request(method, url, headers=merged, content=content, extensions={"timeout": timeout.as_dict()})


async def upstream_send(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """`client.send(request, stream=True)` straight to the client's transport: without the auth and redirect
    flows (the client has neither), the cookie jar (shared by every caller of this upstream, so never used)
    and the timing wrapper, which together cost as much as the transport itself on the gateway's hot path.
    The response's body is still to be read (`aread`, `aiter_bytes`) and closed (`aclose`)."""
    response = await client._transport_for_url(request.url).handle_async_request(request)
    response.request = request
    return response
