"""The outbound URL guard: URL syntax, the address policy and the allowlist as pure functions, then the guarded
transports against real sockets on loopback (no mocks for what happens at connection time)."""

from __future__ import annotations

import asyncio
import datetime
import http.server
import ipaddress
import ssl
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpcore
import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured
from pytest_django.fixtures import Settings

from providers.guard import (
    AddressRefused,
    BlockedByGuard,
    GuardConnectError,
    GuardedAsyncBackend,
    GuardedSyncBackend,
    GuardError,
    check_address,
    check_host,
    guarded_async_transport,
    guarded_transport,
    parse_allowlist,
    validate_base_url,
)

PUBLIC_V4 = "8.8.8.8"
PUBLIC_V6 = "2606:4700:4700::1111"


@pytest.fixture(autouse=True)
def _empty_allowlist(settings: Settings) -> None:
    settings.PRIVATE_UPSTREAM_ALLOWLIST = []


# --- validate_base_url ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://gpu.lan:1234/v1", "http://gpu.lan:1234/v1"),
        ("https://API.OpenAI.com/v1/", "https://api.openai.com/v1"),
        ("HTTPS://example.com:443/", "https://example.com"),
        ("http://example.com", "http://example.com"),
        ("http://[::1]:8080/v1", "http://[::1]:8080/v1"),
        ("http://bücher.example/api", "http://xn--bcher-kva.example/api"),
        ("http://h/a%20b//", "http://h/a%20b"),
    ],
)
def test_base_url_normalised(url: str, expected: str) -> None:
    assert validate_base_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message_part"),
    [
        ("http://user:secret@example.com/v1", "user name or password"),
        ("http://token@example.com/v1", "user name or password"),
        ("http://h/v1?", "query string"),
        ("http://h/v1?key=1", "query string"),
        ("http://h/v1#", "fragment"),
        ("http://h/v1#part", "fragment"),
        ("ftp://h/v1", "http:// or https:// (got 'ftp')"),
        ("file:///etc/passwd", "http:// or https://"),
        ("gpu.lan:1234/v1", "http:// or https://"),
        ("http:h/v1", "name a host"),
        ("http:///v1", "must name a host"),
        ("http://:80/v1", "must name a host"),
        ("http://h /v1", "spaces or control characters"),
        (" http://h/v1", "spaces or control characters"),
        ("http://h/v1\n", "spaces or control characters"),
        ("http://h/\tv1", "spaces or control characters"),
        ("http://h/\x00", "spaces or control characters"),
        ("http://h/\u200bv1", "spaces or control characters"),
        ("http://h:99999/v1", "port"),
        ("http://h:0/v1", "port"),
        ("http://h:abc/v1", "port"),
        ("http://127%2e0.0.1/v1", "host name is not valid"),
        ("http://[::1/v1", "host name is not valid"),
        ("http://a\\b.example/v1", "host name is not valid"),
        ("http://" + "a" * 1990 + ".com/", "too long"),
        ("", "Enter a URL"),
    ],
)
def test_base_url_rules(url: str, message_part: str) -> None:
    with pytest.raises(GuardError) as caught:
        validate_base_url(url)
    assert message_part in caught.value.message
    assert str(caught.value) == caught.value.message


def test_base_url_messages_never_repeat_credentials() -> None:
    with pytest.raises(GuardError) as caught:
        validate_base_url("https://alice:hunter2@example.com/v1")
    assert "hunter2" not in caught.value.message and "alice" not in caught.value.message


def test_base_url_at_the_length_limit_passes() -> None:
    url = "http://h/" + "a" * (2000 - len("http://h/"))
    assert validate_base_url(url) == url


# --- the address policy ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.10", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("100.64.0.1", "shared"),
        ("100.127.255.254", "shared"),
        ("192.0.2.1", "private"),  # documentation range: not global
        ("2001:db8::1", "private"),
        ("::ffff:127.0.0.1", "IPv4-mapped form of 127.0.0.1, a loopback"),
        ("::ffff:10.0.0.1", "IPv4-mapped form of 10.0.0.1, a private"),
        ("::ffff:169.254.169.254", "IPv4-mapped form of 169.254.169.254, a cloud metadata"),
        ("2002:7f00:1::", "6to4 form of 127.0.0.1"),
        ("2002:a9fe:a9fe::", "6to4 form of 169.254.169.254"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo form of 127.0.0.1"),
        ("64:ff9b::a00:1", "NAT64 form of 10.0.0.1"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.170.2", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
    ],
)
def test_refused_addresses(address: str, reason: str) -> None:
    with pytest.raises(AddressRefused) as caught:
        check_address("upstream.example", [address])
    assert reason in caught.value.reason
    assert address in caught.value.message and "PRIVATE_UPSTREAM_ALLOWLIST" in caught.value.message


@pytest.mark.parametrize("address", [PUBLIC_V4, "1.1.1.1", PUBLIC_V6, "::ffff:8.8.8.8", "2002:808:808::"])
def test_public_addresses_pass(address: str) -> None:
    check_address("upstream.example", [address])


def test_every_address_of_a_name_must_pass() -> None:
    with pytest.raises(AddressRefused) as caught:
        check_address("mixed.example", [PUBLIC_V4, PUBLIC_V6, "10.0.0.7"])
    assert caught.value.address == "10.0.0.7"


def test_no_address_is_refused() -> None:
    with pytest.raises(GuardError):
        check_address("void.example", [])


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "127.1", "017700000001", "0x7f000001", "localhost"])
def test_odd_ipv4_forms_and_localhost_resolve_to_loopback_and_are_refused(host: str) -> None:
    # Resolved by the real getaddrinfo (numeric forms and /etc/hosts: no DNS query leaves the machine).
    with pytest.raises(AddressRefused) as caught:
        check_host(host, 80)
    assert caught.value.reason == "a loopback address"


def test_ipv4_mapped_literal_host_is_refused() -> None:
    with pytest.raises(AddressRefused):
        check_host("::ffff:127.0.0.1", 80)


def test_check_host_uses_an_injected_resolver() -> None:
    assert check_host("api.example", 443, resolver=lambda host, port: [PUBLIC_V4]) == [PUBLIC_V4]


# --- the allowlist --------------------------------------------------------------------------------------------


def test_allowlist_cidr(settings: Settings) -> None:
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["192.168.1.0/24", "fd00::/8"]
    check_address("gpu.example", ["192.168.1.40"])
    check_address("gpu.example", ["fd12::5"])
    with pytest.raises(AddressRefused):
        check_address("gpu.example", ["192.168.2.40"])


def test_allowlist_single_ip(settings: Settings) -> None:
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["10.0.0.5"]
    check_address("gpu.example", ["10.0.0.5"])
    with pytest.raises(AddressRefused):
        check_address("gpu.example", ["10.0.0.6"])


def test_allowlist_host_name(settings: Settings) -> None:
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["gpu.lan"]
    check_address("gpu.lan", ["10.0.0.9", "fd00::9"])
    check_address("GPU.LAN.", ["10.0.0.9"])
    with pytest.raises(AddressRefused):
        check_address("other.lan", ["10.0.0.9"])


def test_allowlist_suffix(settings: Settings) -> None:
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["*.lan"]
    check_address("gpu.lan", ["10.0.0.9"])
    check_address("a.b.lan", ["10.0.0.9"])
    for host in ("lan", "evillan", "gpu.lan.example"):
        with pytest.raises(AddressRefused):
            check_address(host, ["10.0.0.9"])


def test_metadata_needs_its_exact_address_on_the_allowlist(settings: Settings) -> None:
    # A Tailscale range or a host name entry must not open the credential endpoints inside them.
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["100.64.0.0/10", "169.254.0.0/16", "meta.lan"]
    check_address("peer.ts.net", ["100.101.102.103"])
    for host, address in [("x", "100.100.100.200"), ("x", "169.254.169.254"), ("meta.lan", "169.254.169.254")]:
        with pytest.raises(AddressRefused):
            check_address(host, [address])
    with pytest.raises(AddressRefused):
        check_address("meta.lan", ["::ffff:169.254.169.254"])
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["169.254.169.254"]
    check_address("x", ["169.254.169.254"])


def test_an_ipv4_entry_covers_its_ipv4_mapped_spelling(settings: Settings) -> None:
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["10.0.0.0/8"]
    check_address("gpu.example", ["::ffff:10.1.2.3"])
    with pytest.raises(AddressRefused):
        check_address("gpu.example", ["::ffff:192.168.0.1"])


def test_parse_allowlist_forms() -> None:
    allow = parse_allowlist("192.168.1.0/24, 10.0.0.5 gpu.lan,*.home.arpa")
    assert allow.networks == (ipaddress.ip_network("192.168.1.0/24"), ipaddress.ip_network("10.0.0.5/32"))
    assert allow.names == {"gpu.lan"}
    assert allow.suffixes == (".home.arpa",)
    assert parse_allowlist([]) == parse_allowlist("")


@pytest.mark.parametrize("entry", ["http://gpu.lan", "10.0.0.0/33", "*", "127.1", "0x7f.1", "gpu lan/x", "a@b"])
def test_parse_allowlist_refuses_bad_entries(entry: str) -> None:
    with pytest.raises(ImproperlyConfigured):
        parse_allowlist([entry])


# --- connection time: a real HTTP server on loopback ----------------------------------------------------------


@dataclass
class Upstream:
    port: int
    connections: list[tuple[str, int]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)

    def saw_nothing_but(self, sentinel_path: str) -> bool:
        """Sends a request from an unguarded client and checks it was the only thing the server saw. The accept
        loop records connections in order, so any earlier connection would be listed before the sentinel's."""
        with httpx.Client(trust_env=False) as client:
            assert client.get(f"http://127.0.0.1:{self.port}{sentinel_path}").status_code == 200
        return len(self.connections) == 1 and self.requests == [sentinel_path]


def _serve(tls: ssl.SSLContext | None = None) -> Iterator[Upstream]:
    upstream = Upstream(port=0)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            upstream.requests.append(self.path)
            body = b"ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def verify_request(self, request: object, client_address: tuple[str, int]) -> bool:  # type: ignore[override]
            upstream.connections.append(client_address)
            return True

    server = Server(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    upstream.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    yield from _serve()


def test_sync_client_is_refused_before_connecting(upstream: Upstream) -> None:
    with httpx.Client(transport=guarded_transport()) as client:
        with pytest.raises(BlockedByGuard) as caught:
            client.get(f"http://127.0.0.1:{upstream.port}/secret")
    assert "loopback" in caught.value.message and str(caught.value) == caught.value.message
    assert isinstance(caught.value, httpx.ConnectError) and isinstance(caught.value, GuardError)
    assert caught.value.request.url.path == "/secret"
    assert upstream.saw_nothing_but("/sentinel")


def test_sync_client_passes_when_allowlisted(upstream: Upstream, settings: Settings) -> None:
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["127.0.0.1"]
    with httpx.Client(transport=guarded_transport()) as client:
        response = client.get(f"http://127.0.0.1:{upstream.port}/models")
    assert response.status_code == 200 and response.text == "ok"
    assert upstream.requests == ["/models"]


@pytest.mark.parametrize("host", ["localhost", "2130706433", "0x7f.1", "127.1", "017700000001", "[::ffff:127.0.0.1]"])
def test_odd_spellings_of_loopback_are_refused_at_connect(upstream: Upstream, host: str) -> None:
    with httpx.Client(transport=guarded_transport()) as client:
        with pytest.raises(BlockedByGuard):
            client.get(f"http://{host}:{upstream.port}/x")
    assert upstream.saw_nothing_but("/sentinel")


def test_a_closed_port_is_a_plain_connect_error(settings: Settings) -> None:
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["127.0.0.1"]
    with httpx.Client(transport=guarded_transport()) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            client.get("http://127.0.0.1:9/")  # discard: refused at once, as in tests/conftest.py
    assert not isinstance(caught.value, GuardError)


def test_environment_proxies_do_not_bypass_the_guard(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    # The "proxy" is the allowlisted recorder: a client that went through it would reach it with the request.
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["127.0.0.1"]
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{upstream.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with httpx.Client(transport=guarded_transport()) as client:
        with pytest.raises(BlockedByGuard):
            client.get("http://127.0.0.2:8/private")
    assert upstream.saw_nothing_but("/sentinel")


def test_async_client_is_refused_before_connecting(upstream: Upstream) -> None:
    async def fetch() -> None:
        async with httpx.AsyncClient(transport=guarded_async_transport()) as client:
            await client.get(f"http://127.0.0.1:{upstream.port}/secret")

    with pytest.raises(BlockedByGuard) as caught:
        asyncio.run(fetch())
    assert "loopback" in caught.value.message
    assert upstream.saw_nothing_but("/sentinel")


def test_async_client_passes_when_allowlisted(upstream: Upstream, settings: Settings) -> None:
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["127.0.0.1"]

    async def fetch() -> httpx.Response:
        async with httpx.AsyncClient(transport=guarded_async_transport()) as client:
            return await client.get(f"http://localhost:{upstream.port}/models")

    response = asyncio.run(fetch())
    assert response.status_code == 200 and upstream.requests == ["/models"]


# --- DNS rebinding --------------------------------------------------------------------------------------------


class Rebinder:
    """Answers a public address first, loopback afterwards: the classic rebinding sequence."""

    def __init__(self, answers: Sequence[Sequence[str]]) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return list(self.answers[min(len(self.calls), len(self.answers)) - 1])

    async def resolve_async(self, host: str, port: int) -> list[str]:
        return self(host, port)


def test_rebinding_cannot_pass_sync(upstream: Upstream) -> None:
    resolver = Rebinder([[PUBLIC_V4], ["127.0.0.1"]])
    check_host("rebind.example", upstream.port, resolver=resolver)  # what a save-time check would see
    with httpx.Client(transport=guarded_transport(resolver=resolver)) as client:
        with pytest.raises(BlockedByGuard):
            client.get(f"http://rebind.example:{upstream.port}/secret")
    assert resolver.calls == ["rebind.example", "rebind.example"]
    assert upstream.saw_nothing_but("/sentinel")


def test_rebinding_cannot_pass_async(upstream: Upstream) -> None:
    resolver = Rebinder([[PUBLIC_V4], ["127.0.0.1"]])
    check_host("rebind.example", upstream.port, resolver=resolver)

    async def fetch() -> None:
        async with httpx.AsyncClient(transport=guarded_async_transport(resolver=resolver.resolve_async)) as client:
            await client.get(f"http://rebind.example:{upstream.port}/secret")

    with pytest.raises(BlockedByGuard):
        asyncio.run(fetch())
    assert upstream.saw_nothing_but("/sentinel")


def test_a_mixed_answer_is_refused_before_any_address_is_tried(upstream: Upstream) -> None:
    resolver = Rebinder([[PUBLIC_V4, "127.0.0.1"]])
    with httpx.Client(transport=guarded_transport(resolver=resolver)) as client:
        with pytest.raises(BlockedByGuard):
            client.get(f"http://mixed.example:{upstream.port}/")
    assert upstream.saw_nothing_but("/sentinel")


def test_backend_connects_to_the_vetted_address_not_the_name(upstream: Upstream, settings: Settings) -> None:
    # "vetted.invalid" cannot resolve anywhere (RFC 6761): the request only arrives if the backend dialled the
    # address it checked rather than handing the name to the OS again.
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["127.0.0.1"]
    resolver = Rebinder([["127.0.0.1"]])
    with httpx.Client(transport=guarded_transport(resolver=resolver)) as client:
        response = client.get(f"http://vetted.invalid:{upstream.port}/models")
    assert response.status_code == 200 and resolver.calls == ["vetted.invalid"]
    assert upstream.requests == ["/models"]


def test_async_backend_connects_to_the_vetted_address_not_the_name(upstream: Upstream, settings: Settings) -> None:
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["127.0.0.1"]
    resolver = Rebinder([["127.0.0.1"]])

    async def fetch() -> httpx.Response:
        async with httpx.AsyncClient(transport=guarded_async_transport(resolver=resolver.resolve_async)) as client:
            return await client.get(f"http://vetted.invalid:{upstream.port}/models")

    assert asyncio.run(fetch()).status_code == 200
    assert resolver.calls == ["vetted.invalid"] and upstream.requests == ["/models"]


def test_backends_raise_a_typed_httpcore_error() -> None:
    backend = GuardedSyncBackend(resolver=lambda host, port: ["127.0.0.1"])
    with pytest.raises(GuardConnectError) as caught:
        backend.connect_tcp("example.test", 80)
    assert isinstance(caught.value, httpcore.ConnectError) and "loopback" in caught.value.message

    async def connect() -> None:
        async def resolver(host: str, port: int) -> list[str]:
            return ["10.0.0.1"]

        await GuardedAsyncBackend(resolver=resolver).connect_tcp("example.test", 80)

    with pytest.raises(GuardConnectError):
        asyncio.run(connect())


# --- TLS still verifies the host name from the URL ------------------------------------------------------------


@dataclass
class Certificate:
    pem: bytes
    key_pem: bytes


def _self_signed(name: str) -> Certificate:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return Certificate(cert.public_bytes(serialization.Encoding.PEM), key_pem)


@pytest.fixture
def tls_upstream(tmp_path: Path) -> Iterator[tuple[Upstream, ssl.SSLContext]]:
    cert = _self_signed("guard.test")
    (tmp_path / "cert.pem").write_bytes(cert.pem)
    (tmp_path / "key.pem").write_bytes(cert.key_pem)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client_context = ssl.create_default_context(cadata=cert.pem.decode("ascii"))
    served = _serve(server_context)
    upstream = next(served)
    server_context.sni_callback = lambda sock, name, ctx: upstream.server_names.append(name)  # type: ignore[assignment,func-returns-value]
    yield upstream, client_context
    next(served, None)


def test_tls_verifies_the_url_host_while_connecting_to_the_ip(
    tls_upstream: tuple[Upstream, ssl.SSLContext],
    settings: Settings,
) -> None:
    upstream, client_context = tls_upstream
    settings.PRIVATE_UPSTREAM_ALLOWLIST = ["127.0.0.1"]
    resolver = Rebinder([["127.0.0.1"]])
    with httpx.Client(transport=guarded_transport(verify=client_context, resolver=resolver)) as client:
        response = client.get(f"https://guard.test:{upstream.port}/v1/models")
        assert response.status_code == 200
        # The certificate names guard.test only; reaching it as another name must fail verification.
        with pytest.raises(httpx.ConnectError) as caught:
            client.get(f"https://other.test:{upstream.port}/v1/models")
    assert not isinstance(caught.value, GuardError) and "certificate" in str(caught.value).lower()
    assert upstream.server_names[0] == "guard.test" and "other.test" in upstream.server_names
    assert upstream.requests == ["/v1/models"]


# --- the httpx internals the transports depend on -------------------------------------------------------------


def test_httpx_internals_still_match() -> None:
    """providers.guard replaces HTTPTransport._pool / AsyncHTTPTransport._pool. If this fails after an httpx
    upgrade, the guard is no longer wired in: update providers/guard.py (_install_pool) before shipping."""
    assert isinstance(getattr(httpx.HTTPTransport(), "_pool", None), httpcore.ConnectionPool)
    assert isinstance(getattr(httpx.AsyncHTTPTransport(), "_pool", None), httpcore.AsyncConnectionPool)

    seen: list[str] = []

    class Recording(GuardedSyncBackend):
        def connect_tcp(self, host: str, port: int, *args: object, **kwargs: object) -> httpcore.NetworkStream:
            seen.append(host)
            raise httpcore.ConnectError("recorded")

    transport = guarded_transport()
    pool = transport._pool  # the attribute under test
    assert isinstance(pool, httpcore.ConnectionPool)
    pool._network_backend = Recording()  # httpcore's own attribute: only to prove requests reach the pool
    with httpx.Client(transport=transport) as client, pytest.raises(httpx.ConnectError):
        client.get("http://routed.test/")
    assert seen == ["routed.test"]


def test_a_changed_httpx_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    original = httpx.HTTPTransport.__init__

    def without_pool(self: httpx.HTTPTransport, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        del self._pool

    monkeypatch.setattr(httpx.HTTPTransport, "__init__", without_pool)
    with pytest.raises(RuntimeError, match="providers.guard must be updated"):
        guarded_transport()
