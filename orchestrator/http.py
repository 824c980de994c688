"""The one place outbound HTTP leaves the app: a pooled httpx client per upstream, created once."""

import threading

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
