"""The one place outbound HTTP leaves the app: a pooled httpx client per upstream, created once."""

import asyncio
import threading
import weakref

import httpx
from django.conf import settings

_clients: dict[str, httpx.Client] = {}
_lock = threading.Lock()


def upstream_client(base_url: str) -> httpx.Client:
    """A keep-alive client for one upstream; reused so every call does not pay a new TCP handshake."""
    key = base_url.rstrip("/")
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = httpx.Client(
                    base_url=key,
                    timeout=httpx.Timeout(settings.UPSTREAM_READ_TIMEOUT, connect=settings.UPSTREAM_CONNECT_TIMEOUT),
                    follow_redirects=False,
                )
                _clients[key] = client
    return client


def close_upstream_clients() -> None:
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


# An httpx.AsyncClient belongs to the event loop it first ran on; one pool per loop and upstream.
_async_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, httpx.AsyncClient]]" = (
    weakref.WeakKeyDictionary()
)


def upstream_async_client(base_url: str) -> httpx.AsyncClient:
    """The pooled async client for one upstream on the running loop. Per-request timeouts are set by
    the caller: a model's first byte and a key test want very different ones."""
    loop = asyncio.get_running_loop()
    per_loop = _async_clients.setdefault(loop, {})
    key = base_url.rstrip("/")
    client = per_loop.get(key)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            base_url=key,
            timeout=httpx.Timeout(settings.UPSTREAM_READ_TIMEOUT, connect=settings.UPSTREAM_CONNECT_TIMEOUT),
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
            follow_redirects=False,
        )
        per_loop[key] = client
    return client
