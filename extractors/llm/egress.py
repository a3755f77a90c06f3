"""The egress guard: report text may only go to endpoints inside the hospital network.

The openai backend calls :func:`check_endpoint` before it opens any connection, and sends every
request through :func:`pinned_transport`, which connects only to the addresses the check saw.
An endpoint is allowed when its host is an address in one of :data:`PRIVATE_NETWORKS`, a name
that resolves only to such addresses, or an entry of ``RRIEF_LLM_ALLOWED_HOSTS`` (a host name,
an IP address or a CIDR network, comma-separated). Everything else raises
:class:`EgressDenied`. This is the privacy promise of the project, in code.

Decisions, and why:

* Loopback (127.0.0.0/8, ::1), RFC 1918 (10/8, 172.16/12, 192.168/16), IPv6 unique local
  addresses (fc00::/7) and link-local addresses (169.254/16, fe80::/10) are allowed: none of
  them is routed over the public internet.
* Carrier-grade NAT space (100.64.0.0/10, RFC 6598) is *refused*: it is the carrier's network
  between a site and its ISP, not the site's own. Overlay networks that use it (e.g. a VPN
  mesh) must be allow-listed explicitly, e.g. ``RRIEF_LLM_ALLOWED_HOSTS=100.64.0.0/10``.
* Unspecified (0.0.0.0, ::), multicast and every public address are refused.
* A host name is resolved ONCE and *every* address it resolves to must be allowed; a name that
  does not resolve is refused. The connection then goes to those checked addresses and no
  others (the Host header and the TLS server name stay the name), so a DNS answer that changes
  between the check and the connect (DNS rebinding) cannot send report text elsewhere.
* ``localhost`` and ``*.localhost`` (RFC 6761) are resolved like any name and must resolve to
  loopback only: resolvers that forward ``.localhost`` to DNS exist, and their answer is not
  trusted to mean "this machine".
* Allow-listed names are trusted without resolving (the operator vouched for the name, so any
  address its DNS gives is theirs); their connections resolve as usual.
* Messages show endpoints through :func:`redact_url`: credentials in a URL never appear.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore
import httpx

from extractors.extract.registry import BackendError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str], list[str]]

PRIVATE_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",  # IPv4 loopback
        "10.0.0.0/8",  # RFC 1918
        "172.16.0.0/12",  # RFC 1918
        "192.168.0.0/16",  # RFC 1918
        "169.254.0.0/16",  # IPv4 link-local (RFC 3927)
        "::1/128",  # IPv6 loopback
        "fc00::/7",  # IPv6 unique local addresses (RFC 4193)
        "fe80::/10",  # IPv6 link-local
    )
)

_HINT = "Add it to RRIEF_LLM_ALLOWED_HOSTS only if this endpoint runs inside your hospital."


_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)?[^/?#]*@")
LOOPBACK_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n) for n in ("127.0.0.0/8", "::1/128")
)


class EgressDenied(BackendError):
    """The endpoint is not a loopback/private address and not on the allow-list."""


@dataclass(frozen=True)
class CheckedEndpoint:
    """What :func:`check_endpoint` allowed: the host and the addresses to connect to.

    ``addresses`` is None for an allow-listed host name (resolved as usual when connecting).
    """

    host: str
    addresses: tuple[str, ...] | None


def redact_url(url: str) -> str:
    """``url`` fit for a log line or a message: userinfo (``user:password@``) becomes ``***@``
    and a query string (which may carry a key) ``?***``."""
    text = _USERINFO.sub(lambda m: f"{m['scheme'] or ''}***@", url.strip(), count=1)
    head, query, _ = text.partition("?")
    return head + ("?***" if query else "")


def url_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` without its userinfo, and the ``(user, password)`` it carried (or None)."""
    parts = urlsplit(url.strip())
    if "@" not in parts.netloc:
        return url.strip(), None
    host = parts.netloc.rpartition("@")[2]
    bare = parts._replace(netloc=host).geturl()
    return bare, (parts.username or "", parts.password or "")


def resolve_host(host: str) -> list[str]:
    """All IP addresses ``host`` resolves to (no connection is made, only a name lookup)."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return sorted({str(info[4][0]) for info in infos})


def parse_allowed_hosts(value: str) -> list[str]:
    """Split the comma-separated ``RRIEF_LLM_ALLOWED_HOSTS`` value into clean entries."""
    return [part.strip().lower().strip("[]") for part in value.split(",") if part.strip()]


def is_private_address(address: IPAddress) -> bool:
    """True for loopback, RFC 1918, link-local and IPv6 unique-local addresses."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:8.8.8.8 is 8.8.8.8
    return any(address in net for net in PRIVATE_NETWORKS if net.version == address.version)


def _allow_listed(host: str, addresses: Iterable[IPAddress], allowed: list[str]) -> bool:
    """True when ``host`` (or all of its addresses) matches an allow-list entry."""
    if host in allowed:
        return True
    networks: list[IPNetwork] = []
    for entry in allowed:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue  # a host name entry; matched above
    addresses = list(addresses)
    return bool(addresses) and all(
        any(a.version == n.version and a in n for n in networks) for a in addresses
    )


def endpoint_host(url: str) -> str:
    """The host part of an endpoint URL, lower-cased; raises :class:`EgressDenied` if absent."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise EgressDenied(
            f"endpoint {redact_url(url)!r} must be an http:// or https:// URL "
            "(e.g. http://127.0.0.1:8000/v1)"
        )
    host = (parts.hostname or "").lower()
    if not host:
        raise EgressDenied(f"endpoint {redact_url(url)!r} has no host name")
    return host


def is_localhost_name(host: str) -> bool:
    """``localhost`` or a name under it (RFC 6761 reserves both for the loopback interface)."""
    return host == "localhost" or host.endswith(".localhost")


def check_endpoint(
    url: str,
    allowed_hosts: Iterable[str] = (),
    resolve: Resolver = resolve_host,
) -> CheckedEndpoint:
    """Raise :class:`EgressDenied` unless ``url`` points inside the local/private network.

    ``allowed_hosts`` are the non-private hosts a site allowed (``RRIEF_LLM_ALLOWED_HOSTS``,
    passed in by the caller; none by default).
    ``resolve`` maps a host name to its addresses (the system resolver by default); it is called
    at most once, and the returned :class:`CheckedEndpoint` holds the addresses it gave, for
    :func:`pinned_transport`. Never connects to the endpoint.
    """
    host = endpoint_host(url)
    allowed = [h.strip().lower().strip("[]") for h in allowed_hosts if h.strip()]
    if host in allowed:
        return CheckedEndpoint(host, None)
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host)]
        targets = [host]
    except ValueError:
        try:
            targets = list(resolve(host))
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in targets]
        except (OSError, UnicodeError, ValueError) as exc:
            raise EgressDenied(
                f"refusing to send report text to {host}: the name does not resolve ({exc}), "
                "so it cannot be checked to be a loopback or private address. " + _HINT
            ) from None
        if not addresses:
            raise EgressDenied(
                f"refusing to send report text to {host}: no address found. {_HINT}"
            ) from None
        if is_localhost_name(host):
            _require_loopback(host, addresses)
    if not _allow_listed(host, addresses, allowed):
        public = [a for a in addresses if not is_private_address(a)]
        if public:
            shown = ", ".join(str(a) for a in public)
            where = host if host == shown else f"{host} ({shown})"
            raise EgressDenied(
                f"refusing to send report text to {where}: not a loopback or private address. "
                + _HINT
            )
    return CheckedEndpoint(host, tuple(targets))


def _require_loopback(host: str, addresses: list[IPAddress]) -> None:
    def loopback(a: IPAddress) -> bool:
        if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
            a = a.ipv4_mapped
        return any(a in n for n in LOOPBACK_NETWORKS if n.version == a.version)

    other = [a for a in addresses if not loopback(a)]
    if other:
        raise EgressDenied(
            f"refusing to send report text to {host} ({', '.join(map(str, other))}): a "
            ".localhost name must resolve to loopback only; this resolver answered otherwise. "
            "Use 127.0.0.1 or the server's private address."
        )


class PinnedBackend(httpcore.NetworkBackend):
    """httpcore's network layer, restricted to the checked endpoint.

    TCP connections go to ``checked.addresses`` (tried in order) instead of a fresh DNS answer;
    any other host is refused. httpcore still sends the Host header and does the TLS handshake
    (server name indication, certificate check) with the URL's host name.
    """

    def __init__(self, checked: CheckedEndpoint, inner: httpcore.NetworkBackend | None = None):
        self.checked = checked
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        if host.lower().strip("[]") != self.checked.host:
            raise httpcore.ConnectError(
                f"refusing to connect to {host}: only the checked endpoint host may be reached"
            )
        targets = self.checked.addresses or (host,)
        last: Exception | None = None
        for target in targets:
            try:
                return self._inner.connect_tcp(target, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not an endpoint the egress guard checked")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class PinnedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` whose connection pool uses a :class:`PinnedBackend`.

    httpx has no option for the network backend, so the pool is rebuilt with the same limits
    (``_pool`` is the attribute every httpx 0.2x transport sends requests through).
    """

    def __init__(
        self,
        checked: CheckedEndpoint,
        *,
        limits: httpx.Limits,
        verify: typing.Any = True,
        inner: httpcore.NetworkBackend | None = None,
    ) -> None:
        super().__init__(verify=verify, limits=limits, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PinnedBackend(checked, inner),
        )


def pinned_transport(
    checked: CheckedEndpoint, limits: httpx.Limits, verify: typing.Any = True
) -> httpx.HTTPTransport:
    """The transport for an endpoint :func:`check_endpoint` allowed (see :class:`PinnedBackend`)."""
    return PinnedTransport(checked, limits=limits, verify=verify)
