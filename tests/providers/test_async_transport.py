"""The aiohttp-backed async transport (providers.guard.guarded_async_transport / http_async_transport): what
aiohttp would otherwise do differently from httpcore. It dials an address literal without asking the resolver
and caches DNS answers, and httpx-aiohttp reports a refused connection as a timeout."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pytest_django.fixtures import Settings

from providers.guard import BlockedByGuard, GuardError, guarded_async_transport, http_async_transport
from tests.providers.test_guard import Rebinder, Upstream, _serve


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    # Its handler speaks HTTP/1.0: every request comes on a new connection.
    yield from _serve()


def _get(transport: httpx.AsyncBaseTransport, *urls: str) -> list[httpx.Response | Exception]:
    async def fetch() -> list[httpx.Response | Exception]:
        results: list[httpx.Response | Exception] = []
        async with httpx.AsyncClient(transport=transport) as client:
            for url in urls:
                try:
                    results.append(await client.get(url))
                except httpx.HTTPError as exc:
                    results.append(exc)
        return results

    return asyncio.run(fetch())


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "2130706433", "0x7f.1", "127.1", "017700000001", "[::ffff:127.0.0.1]"]
)
def test_odd_spellings_of_loopback_are_refused(upstream: Upstream, host: str) -> None:
    [result] = _get(guarded_async_transport(), f"http://{host}:{upstream.port}/x")
    assert isinstance(result, BlockedByGuard), result
    assert upstream.saw_nothing_but("/sentinel")


def test_every_new_connection_is_checked_again(upstream: Upstream, settings: Settings) -> None:
    # No DNS cache: the second connection asks the resolver again and gets (and refuses) the private answer.
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["127.0.0.1"]
    resolver = Rebinder([["127.0.0.1"], ["10.0.0.1"]])
    url = f"http://rebind.invalid:{upstream.port}/models"
    first, second = _get(guarded_async_transport(resolver=resolver.resolve_async), url, url)
    assert isinstance(first, httpx.Response) and first.status_code == 200
    assert isinstance(second, BlockedByGuard) and "private" in second.message
    assert resolver.calls == ["rebind.invalid", "rebind.invalid"] and upstream.requests == ["/models"]


def test_a_changed_allowlist_applies_to_the_next_connection(upstream: Upstream, settings: Settings) -> None:
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["127.0.0.1"]
    url = f"http://127.0.0.1:{upstream.port}/models"
    transport = guarded_async_transport()

    async def fetch() -> tuple[httpx.Response, Exception | None]:
        async with httpx.AsyncClient(transport=transport) as client:
            allowed = await client.get(url)
            settings.PRIVATE_UPSTREAM_ALLOWLIST = []
            try:
                await client.get(url)
            except BlockedByGuard as exc:
                return allowed, exc
            return allowed, None

    allowed, refused = asyncio.run(fetch())
    assert allowed.status_code == 200 and isinstance(refused, BlockedByGuard)
    assert upstream.requests == ["/models"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("guarded", [True, False])
def test_a_refused_connection_is_a_connect_error(settings: Settings, guarded: bool) -> None:
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["127.0.0.1"]
    transport = guarded_async_transport() if guarded else http_async_transport()
    [result] = _get(transport, f"http://127.0.0.1:{_closed_port()}/")
    assert type(result) is httpx.ConnectError and not isinstance(result, GuardError)


@pytest.mark.parametrize("guarded", [True, False])
def test_only_the_unguarded_transport_takes_the_proxy_from_the_environment(
    upstream: Upstream, settings: Settings, monkeypatch: pytest.MonkeyPatch, guarded: bool
) -> None:
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["127.0.0.1"]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{upstream.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    transport = guarded_async_transport() if guarded else http_async_transport()
    [result] = _get(transport, "http://proxied.invalid/v1/models")
    if guarded:
        # Straight to the name, which cannot resolve (RFC 6761): the proxy saw nothing.
        assert isinstance(result, httpx.ConnectError) and upstream.requests == []
    else:
        assert isinstance(result, httpx.Response) and result.status_code == 200
        assert upstream.requests == ["http://proxied.invalid/v1/models"]


def test_a_netrc_entry_for_the_upstream_changes_nothing(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # httpx never read ~/.netrc on its own; aiohttp does when its session trusts the environment, and then
    # refuses a request that also carries an Authorization header (every provider key is one).
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password secret\n")
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)

    async def fetch() -> httpx.Response:
        async with httpx.AsyncClient(transport=http_async_transport()) as client:
            url = f"http://127.0.0.1:{upstream.port}/v1/models"
            return await client.get(url, headers={"Authorization": "Bearer k"})

    response = asyncio.run(fetch())
    assert response.status_code == 200 and upstream.requests == ["/v1/models"]
