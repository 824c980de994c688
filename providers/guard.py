"""Outbound URL guard: keeps user-configured upstreams from reaching the server's own network (SSRF).

Two layers, because checking a URL once when it is saved proves nothing about where it points later:

* ``validate_base_url`` - syntax rules for a base URL a user typed (run when a form is saved).
* The guarded network backends and transports - every TCP connection resolves the host itself, refuses
  unless *every* address is acceptable, then connects to one of those vetted addresses (never to the name
  again), so a DNS answer that changes between the check and the connect (DNS rebinding) cannot pass.

What a caller catches:

* ``GuardError`` - anything the guard refused; ``.message`` is safe to show a user (no credentials).
* ``BlockedByGuard`` - what a guarded ``httpx.Client``/``AsyncClient`` raises when the guard refuses a
  connection. It is both a ``GuardError`` and an ``httpx.ConnectError``, so generic transport-error handling
  still treats it as a failed connect; catch it (or ``GuardError``) *before* ``httpx.ConnectError`` to tell
  "refused by policy" from "nothing listening". A plain ``httpx.ConnectError`` is an ordinary network failure.

Private upstreams (a GPU box on the LAN, a Tailscale peer) are opened with the Django setting
``PRIVATE_UPSTREAM_ALLOWLIST``, read at every check so a change applies without a restart.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
import time
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import anyio
import httpcore
import httpx
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.helpers import get_env_proxy_for_url
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from httpx_aiohttp import AiohttpTransport

__all__ = [
    "METADATA_ADDRESSES",
    "MAX_URL_LENGTH",
    "AddressRefused",
    "Allowlist",
    "AsyncResolver",
    "BlockedByGuard",
    "GuardConnectError",
    "GuardError",
    "GuardedAsyncBackend",
    "GuardedResolver",
    "GuardedSyncBackend",
    "Resolver",
    "address_problem",
    "check_address",
    "check_host",
    "current_allowlist",
    "guarded_async_transport",
    "guarded_transport",
    "http_async_transport",
    "parse_allowlist",
    "resolve",
    "validate_base_url",
]

MAX_URL_LENGTH = 2000

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# A resolver maps (host, port) to the IP addresses a connection could go to, as strings.
Resolver = Callable[[str, int], Sequence[str]]
AsyncResolver = Callable[[str, int], Awaitable[Sequence[str]]]

# Instance-metadata endpoints hand out cloud credentials. All of them are non-global anyway; they are named so
# the message says why, and so a broad allowlist entry (100.64.0.0/10 for a Tailscale net contains Alibaba's
# 100.100.100.200) or an allowlisted host name cannot open them: only an entry for the exact address can.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
        "169.254.169.253",  # AWS VPC DNS
        "169.254.169.123",  # AWS time sync
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.170.23",  # AWS EKS pod identity
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (legacy)
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity over IPv6
    )
)

_SHARED_V4 = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64_V6 = ipaddress.IPv6Network("64:ff9b::/96")


# --- errors ---------------------------------------------------------------------------------------------------


class GuardError(Exception):
    """Anything the guard refuses. ``message`` is written for the user and never contains credentials."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AddressRefused(GuardError):
    """A host resolved to an address outside what the guard lets through."""

    def __init__(self, message: str, *, host: str, address: str, reason: str) -> None:
        super().__init__(message)
        self.host = host
        self.address = address
        self.reason = reason


class GuardConnectError(GuardError, httpcore.ConnectError):
    """Raised by the guarded httpcore backends. Being an ``httpcore.ConnectError`` makes httpcore treat it as a
    failed connect (the pool drops the connection) and httpx map it to ``httpx.ConnectError``."""


class BlockedByGuard(GuardError, httpx.ConnectError):
    """Raised by the guarded httpx transports when the guard refused the connection (see module docstring)."""

    def __init__(self, message: str, *, request: httpx.Request | None = None) -> None:
        # httpx.ConnectError's __init__ takes the request as a keyword; GuardError's sets .message.
        httpx.ConnectError.__init__(self, message, request=request)
        self.message = message


# --- base URL syntax ------------------------------------------------------------------------------------------

_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")


def validate_base_url(url: str) -> str:
    """Check a base URL a user typed; return it normalised (lower-case scheme and host, IDN host in its ASCII
    form, default port dropped, no trailing slash). Raises GuardError naming the rule broken. The messages never
    repeat the URL: it may hold a password the user pasted by mistake."""
    if not isinstance(url, str) or not url:
        raise GuardError("Enter a URL.")
    if len(url) > MAX_URL_LENGTH:
        raise GuardError(f"The URL is too long (at most {MAX_URL_LENGTH} characters).")
    if any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") for ch in url):
        raise GuardError("The URL must not contain spaces or control characters.")
    # The raw characters are tested because urlsplit forgets an empty query or fragment ("http://h/v1?").
    query_at, fragment_at = url.find("?"), url.find("#")
    if query_at != -1 and (fragment_at == -1 or query_at < fragment_at):
        raise GuardError("A base URL must not contain a query string ('?').")
    if fragment_at != -1:
        raise GuardError("A base URL must not contain a fragment ('#').")

    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed "[" around an IPv6 host
        raise GuardError("The URL's host name is not valid.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = f" (got '{scheme}')" if scheme and len(scheme) <= 20 and scheme.isascii() else ""
        raise GuardError(f"The URL must start with http:// or https://{shown}.")
    if not url[len(parts.scheme) :].startswith("://"):
        raise GuardError("The URL must start with http:// or https:// and name a host.")
    if "@" in parts.netloc:
        raise GuardError(
            "The URL must not contain a user name or password (user:pass@host); put credentials in the API key."
        )
    if not parts.hostname:
        raise GuardError("The URL must name a host.")
    try:
        port = parts.port
    except ValueError:
        raise GuardError("The URL's port must be a number from 1 to 65535.") from None
    if port == 0:
        raise GuardError("The URL's port must be a number from 1 to 65535.")

    # httpx is what will send the requests, so its reading of the URL (IDNA, path encoding) is the one kept.
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise GuardError("The URL's host name is not valid.") from None
    host = parsed.raw_host.decode("ascii").lower()
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if not _HOST_NAME.fullmatch(host):
            raise GuardError("The URL's host name is not valid.") from None
        netloc = host.rstrip(".")
    else:
        netloc = f"[{ip.compressed}]" if ip.version == 6 else ip.compressed
    if parsed.port is not None and parsed.port != {"http": 80, "https": 443}[scheme]:
        netloc = f"{netloc}:{parsed.port}"
    path = parsed.raw_path.decode("ascii").rstrip("/")
    return f"{scheme}://{netloc}{path}"


# --- address policy -------------------------------------------------------------------------------------------


def _embedded_v4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """IPv6 forms that carry an IPv4 address which the stack or a gateway may end up reaching."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "an IPv4-mapped"
    if ip.sixtofour is not None:
        return ip.sixtofour, "a 6to4"
    if ip.teredo is not None:
        return ip.teredo[1], "a Teredo"
    if ip in _NAT64_V6:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "a NAT64"
    return None


def address_problem(ip: IPAddress) -> str | None:
    """Why an address may not be connected to without an allowlist entry, or None when it is a public one."""
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_v4(ip)
        if embedded is not None:
            inner, form = embedded
            problem = address_problem(inner)
            if problem is not None:
                return f"{form} form of {inner}, {problem}"
            if ip.ipv4_mapped is not None:
                # The stack sends a mapped address out as plain IPv4, so the embedded address is the whole story.
                return None
    # Most specific first, so the message names the class the user will recognise.
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED_V4:
        return "a shared (carrier-grade NAT) address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True)
class Allowlist:
    """Private destinations an administrator has opened. ``networks`` hold CIDRs and single addresses,
    ``names`` exact host names, ``suffixes`` the ``*.lan`` patterns (kept as ``.lan``)."""

    networks: tuple[IPNetwork, ...] = ()
    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()

    def allows_host(self, host: str) -> bool:
        name = host.lower().rstrip(".")
        return name in self.names or any(name.endswith(suffix) for suffix in self.suffixes)

    def allows_address(self, ip: IPAddress) -> bool:
        return any(candidate in net for candidate in _same_destination(ip) for net in self._nets_for(candidate))

    def names_exactly(self, ip: IPAddress) -> bool:
        return any(
            net.num_addresses == 1 and candidate in net
            for candidate in _same_destination(ip)
            for net in self._nets_for(candidate)
        )

    def _nets_for(self, ip: IPAddress) -> Iterable[IPNetwork]:
        return (net for net in self.networks if net.version == ip.version)


def _same_destination(ip: IPAddress) -> tuple[IPAddress, ...]:
    """An IPv4-mapped address reaches the very IPv4 host it embeds, so both spellings match the same entries."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip, ip.ipv4_mapped
    return (ip,)


def _is_metadata(ip: IPAddress) -> bool:
    if ip in METADATA_ADDRESSES:
        return True
    embedded = _embedded_v4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    return embedded is not None and embedded[0] in METADATA_ADDRESSES


_NAME_ENTRY = re.compile(r"(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*")


def parse_allowlist(value: str | Iterable[str]) -> Allowlist:
    """Entries are CIDRs (``192.168.1.0/24``, ``fd00::/8``), single addresses (``10.0.0.5``), host names
    (``gpu.lan``) or suffix patterns (``*.lan``: any name ending in ``.lan``, not ``lan`` itself). A string is
    split on commas and whitespace. A bad entry raises ImproperlyConfigured: guessing could open too much."""
    raw = re.split(r"[\s,]+", value) if isinstance(value, str) else list(value)
    networks: list[IPNetwork] = []
    names: set[str] = set()
    suffixes: list[str] = []
    for item in raw:
        entry = str(item).strip().lower().rstrip(".")
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        last_label = entry.rsplit(".", 1)[-1]
        # A name that is all digits or hex ("127.1", "0x7f.1") is an IP written oddly; as a name entry it would
        # allow whatever the resolver makes of it, so it is refused rather than guessed at.
        if not _NAME_ENTRY.fullmatch(entry) or last_label.isdigit() or last_label.startswith("0x"):
            raise ImproperlyConfigured(
                f"PRIVATE_UPSTREAM_ALLOWLIST entry {item!r} is not an IP address, a CIDR, a host name or *.suffix."
            )
        if entry.startswith("*."):
            suffixes.append(entry[1:])
        else:
            names.add(entry)
    return Allowlist(tuple(networks), frozenset(names), tuple(suffixes))


def current_allowlist() -> Allowlist:
    """The allowlist as configured right now (read per check so tests and admins can change it live)."""
    return parse_allowlist(getattr(settings, "PRIVATE_UPSTREAM_ALLOWLIST", []) or [])


def check_address(host: str, addresses: Sequence[str], allowlist: Allowlist | None = None) -> None:
    """Refuse unless every address ``host`` resolved to may be connected to. A host name on the allowlist opens
    all its addresses except cloud metadata ones; otherwise each address must be public or inside an allowlisted
    network. Raises AddressRefused (a GuardError)."""
    if allowlist is None:
        allowlist = current_allowlist()
    if not addresses:
        raise GuardError(f"The host {host!r} did not resolve to any address.")
    host_allowed = allowlist.allows_host(host)
    for text in addresses:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            raise AddressRefused(
                f"Refused to connect to {host!r}: {text!r} is not an IP address.",
                host=host,
                address=text,
                reason="not an IP address",
            ) from None
        problem = address_problem(ip)
        if problem is None:
            continue
        if _is_metadata(ip):
            if allowlist.names_exactly(ip):
                continue
        elif host_allowed or allowlist.allows_address(ip):
            continue
        shown = text if text == host else f"{host!r} ({text})"
        raise AddressRefused(
            f"Refused to connect to {shown}: it is {problem}. Private and internal addresses are blocked; "
            "an administrator can allow them with PRIVATE_UPSTREAM_ALLOWLIST.",
            host=host,
            address=text,
            reason=problem,
        )


def _unique_addresses(infos: Iterable[tuple[Any, ...]]) -> list[str]:
    seen: dict[str, None] = {}
    for family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0])
        # Keep an IPv6 scope (fe80::1%2): without it an allowlisted link-local peer cannot be reached.
        if family == socket.AF_INET6 and len(sockaddr) > 3 and sockaddr[3] and "%" not in address:
            address = f"{address}%{sockaddr[3]}"
        seen.setdefault(address, None)
    return list(seen)


def resolve(host: str, port: int) -> list[str]:
    """Resolve the way the socket layer does (getaddrinfo), so odd IPv4 spellings like ``2130706433`` or
    ``0x7f.1`` come out as the address a connection would really reach."""
    return _unique_addresses(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))


async def _resolve_async(host: str, port: int) -> list[str]:
    # The running loop's getaddrinfo runs in its executor and does not block the event loop.
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return _unique_addresses(infos)


def check_host(host: str, port: int = 443, resolver: Resolver | None = None) -> list[str]:
    """Resolve ``host`` and check every address; return them. Good for early feedback when a URL is saved, but
    not a protection by itself: only the guarded transports check the address actually connected to."""
    try:
        addresses = list((resolver or resolve)(host, port))
    except (OSError, UnicodeError):
        raise GuardError(f"The host {host!r} could not be resolved.") from None
    check_address(host, addresses)
    return addresses


# --- connection time ------------------------------------------------------------------------------------------


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ConnectTimeout("Timed out connecting.")
    return left


def _vet(host: str, addresses: Sequence[str]) -> list[str]:
    try:
        check_address(host, addresses)
    except GuardError as exc:
        raise GuardConnectError(exc.message) from exc
    return list(addresses)


class GuardedSyncBackend(httpcore.SyncBackend):
    """httpcore's sync backend, but the host is resolved here, every address checked, and the socket opened to a
    vetted IP. TLS is unaffected: httpcore passes the URL's host name to start_tls as server_hostname, so SNI and
    certificate checks still use the name."""

    def __init__(self, resolver: Resolver | None = None) -> None:
        self._resolver: Resolver = resolver or resolve

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            addresses = list(self._resolver(host, port))
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(exc) from exc
        last_error: Exception | None = None
        for address in _vet(host, addresses):
            try:
                return super().connect_tcp(address, port, _remaining(deadline), local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None  # _vet refuses an empty answer
        raise last_error


class GuardedAsyncBackend(httpcore.AnyIOBackend):
    """The asyncio counterpart of GuardedSyncBackend (resolution runs on the running loop's getaddrinfo)."""

    def __init__(self, resolver: AsyncResolver | None = None) -> None:
        self._resolver: AsyncResolver = resolver or _resolve_async

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            with anyio.fail_after(timeout):
                addresses = list(await self._resolver(host, port))
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(exc) from exc
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(exc) from exc
        last_error: Exception | None = None
        for address in _vet(host, addresses):
            try:
                return await super().connect_tcp(address, port, _remaining(deadline), local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error


def _blocked(exc: httpx.ConnectError, request: httpx.Request) -> BlockedByGuard | None:
    cause = exc.__cause__
    if isinstance(cause, GuardConnectError):
        return BlockedByGuard(cause.message, request=request)
    return None


class _GuardedHTTPTransport(httpx.HTTPTransport):
    """Re-types a guard refusal as BlockedByGuard; httpx would otherwise flatten it into a plain ConnectError."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return super().handle_request(request)
        except httpx.ConnectError as exc:
            blocked = _blocked(exc, request)
            if blocked is None:
                raise
            raise blocked from exc.__cause__


# httpx 0.28 has no network_backend argument, so the transport's pool is replaced after construction. This is the
# one place that depends on httpx internals: HTTPTransport/AsyncHTTPTransport keep their httpcore pool in `_pool`
# and send every request through it (tests/providers/test_guard.py::test_httpx_internals_still_match pins it).
_POOL_ATTRIBUTE = "_pool"


def _install_pool(transport: httpx.HTTPTransport | httpx.AsyncHTTPTransport, pool: object, expected: type) -> None:
    current = getattr(transport, _POOL_ATTRIBUTE, None)
    if not isinstance(current, expected):
        # Fail closed and loudly: a silently unguarded transport is worse than no transport.
        raise RuntimeError(
            f"httpx {httpx.__version__} no longer keeps a {expected.__name__} in {type(transport).__name__}."
            f"{_POOL_ATTRIBUTE}; providers.guard must be updated before outbound requests can be guarded."
        )
    setattr(transport, _POOL_ATTRIBUTE, pool)


def _guarded(
    transport_class: type[httpx.HTTPTransport] | type[httpx.AsyncHTTPTransport],
    pool_class: type[httpcore.ConnectionPool] | type[httpcore.AsyncConnectionPool],
    backend: httpcore.NetworkBackend | httpcore.AsyncNetworkBackend,
    verify: ssl.SSLContext | bool,
    limits: httpx.Limits | None,
) -> httpx.HTTPTransport | httpx.AsyncHTTPTransport:
    limits = limits or httpx.Limits()
    ssl_context = httpx.create_ssl_context(verify=verify, trust_env=False)
    transport = transport_class(verify=ssl_context, trust_env=False, limits=limits)
    pool = pool_class(
        ssl_context=ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=backend,
    )
    _install_pool(transport, pool, pool_class)
    return transport


def guarded_transport(
    *,
    verify: ssl.SSLContext | bool = True,
    limits: httpx.Limits | None = None,
    resolver: Resolver | None = None,
) -> httpx.HTTPTransport:
    """An httpx transport whose every connection goes through the guard. No proxy, environment proxies included
    (trust_env is off). Pass ``limits`` here: an httpx.Client given a transport ignores its own ``limits``."""
    transport = _guarded(_GuardedHTTPTransport, httpcore.ConnectionPool, GuardedSyncBackend(resolver), verify, limits)
    assert isinstance(transport, httpx.HTTPTransport)
    return transport


class GuardedResolver(AbstractResolver):
    """The aiohttp counterpart of the guarded backends: a guarded connector asks this resolver for a host's
    addresses, gets them only when every one passes the guard, and dials those addresses (the name goes only into
    TLS as server_hostname). aiohttp's DNS cache must be off for it, or a cached answer would skip the check."""

    def __init__(self, resolver: AsyncResolver | None = None) -> None:
        self._resolver: AsyncResolver = resolver or _resolve_async

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            addresses = list(await self._resolver(host, port))
        except UnicodeError as exc:
            raise OSError(str(exc)) from exc  # aiohttp reports an OSError from a resolver as a failed lookup
        check_address(host, addresses)
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        return None


def _looks_like_address(host: str) -> bool:
    # aiohttp's own test (helpers.is_ip_address): such a host is dialled as it is, without asking the resolver.
    return ":" in host or host.replace(".", "").isdigit()


class _AiohttpTransport(AiohttpTransport):
    """httpx-aiohttp's transport, with one aiohttp session (created on the loop of the first request) and
    failures typed as httpx's own transport types them: httpx-aiohttp reports a refused connection as a
    ConnectTimeout. With a ``guard`` resolver every connection goes through the guard."""

    def __init__(self, *, verify: ssl.SSLContext | bool, limits: httpx.Limits, guard: GuardedResolver | None) -> None:
        # An unguarded client honours the environment's proxy and CA settings, as httpx's own does; a guarded one
        # never: a proxy would make the connection the guard checked one to the proxy.
        super().__init__(verify=verify, trust_env=guard is None, limits=limits)
        self._guard = guard
        # The environment's proxy per origin, read once (httpx reads it once per client). The session itself
        # does not trust the environment: aiohttp would then read ~/.netrc and the proxy variables in a
        # worker thread on every request (two thread hops on the latency path), and a netrc entry for a
        # provider's host would clash with the key's Authorization header.
        self._env_proxies: dict[tuple[str, str, int | None], httpx.Proxy | None] = {}

    def get_client(self) -> aiohttp.ClientSession:
        keepalive = {} if self.limits.keepalive_expiry is None else {"keepalive_timeout": self.limits.keepalive_expiry}
        connector = aiohttp.TCPConnector(
            limit=self.limits.max_connections or 0,
            ssl=self.ssl_context,
            resolver=self._guard,
            use_dns_cache=self._guard is None,
            **keepalive,
        )
        return aiohttp.ClientSession(connector=connector)

    async def _env_proxy(self, url: httpx.URL) -> httpx.Proxy | None:
        origin = (url.scheme, url.host, url.port)
        if origin not in self._env_proxies:
            try:
                # In a thread: it may read ~/.netrc for the proxy's credentials.
                proxy, auth = await asyncio.to_thread(get_env_proxy_for_url, yarl.URL(str(url)))
            except LookupError:
                self._env_proxies[origin] = None
            else:
                credentials = None if auth is None else (auth.login, auth.password)
                self._env_proxies[origin] = httpx.Proxy(str(proxy), auth=credentials)
        return self._env_proxies[origin]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            if self._guard is not None and _looks_like_address(request.url.host):
                # An address literal needs no lookup, so aiohttp never asks the resolver: check it here.
                await self._guard.resolve(request.url.host, request.url.port or 0)
            elif self._guard is None:
                # httpx-aiohttp reads `self.proxy` before its first await, so no other request can change it
                # in between.
                self.proxy = await self._env_proxy(request.url)
            return await super().handle_async_request(request)
        except GuardError as exc:
            raise BlockedByGuard(exc.message, request=request) from exc
        except httpx.ConnectTimeout as exc:
            cause = exc.__cause__
            if isinstance(cause, aiohttp.ClientConnectorError) and not isinstance(cause, asyncio.TimeoutError):
                raise httpx.ConnectError(str(cause), request=request) from cause
            raise


def http_async_transport(*, limits: httpx.Limits | None = None) -> httpx.AsyncBaseTransport:
    """An unguarded aiohttp-backed transport for httpx.AsyncClient (for upstreams an administrator configured)."""
    return _AiohttpTransport(verify=True, limits=limits or httpx.Limits(), guard=None)


def guarded_async_transport(
    *,
    verify: ssl.SSLContext | bool = True,
    limits: httpx.Limits | None = None,
    resolver: AsyncResolver | None = None,
) -> httpx.AsyncBaseTransport:
    """The asyncio counterpart of guarded_transport, for httpx.AsyncClient: aiohttp underneath, with every
    connection resolved and checked by GuardedResolver. No proxy (trust_env is off)."""
    return _AiohttpTransport(verify=verify, limits=limits or httpx.Limits(), guard=GuardedResolver(resolver))
