"""The egress guard: report text may only go to endpoints inside the hospital network.

The openai backend calls :func:`check_endpoint` before it opens any connection. An endpoint is
allowed when its host is ``localhost``, an address in one of :data:`PRIVATE_NETWORKS`, a name
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
* A host name is resolved and *every* address it resolves to must be allowed; a name that does
  not resolve is refused. Allow-listed names are trusted without resolving (the operator
  vouched for them). The check runs once, when the extractor is built: a DNS answer that
  changes afterwards is not re-checked, so prefer IP addresses or allow-listed names that the
  site's own DNS controls.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

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


class EgressDenied(BackendError):
    """The endpoint is not a loopback/private address and not on the allow-list."""


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
            f"endpoint {url!r} must be an http:// or https:// URL (e.g. http://127.0.0.1:8000/v1)"
        )
    host = (parts.hostname or "").lower()
    if not host:
        raise EgressDenied(f"endpoint {url!r} has no host name")
    return host


def check_endpoint(
    url: str,
    allowed_hosts: Iterable[str] = (),
    resolve: Resolver = resolve_host,
) -> None:
    """Raise :class:`EgressDenied` unless ``url`` points inside the local/private network.

    ``allowed_hosts`` are the non-private hosts a site allowed (``RRIEF_LLM_ALLOWED_HOSTS``,
    passed in by the caller; none by default).
    ``resolve`` maps a host name to its addresses (the system resolver by default).
    Never connects to the endpoint.
    """
    host = endpoint_host(url)
    allowed = [h.strip().lower().strip("[]") for h in allowed_hosts if h.strip()]
    if host in allowed:
        return
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        if host == "localhost" or host.endswith(".localhost"):
            return  # RFC 6761: always the loopback interface
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in resolve(host)]
        except (OSError, UnicodeError, ValueError) as exc:
            raise EgressDenied(
                f"refusing to send report text to {host}: the name does not resolve ({exc}), "
                "so it cannot be checked to be a loopback or private address. " + _HINT
            ) from None
        if not addresses:
            raise EgressDenied(
                f"refusing to send report text to {host}: no address found. {_HINT}"
            ) from None
    if _allow_listed(host, addresses, allowed):
        return
    public = [a for a in addresses if not is_private_address(a)]
    if public:
        shown = ", ".join(str(a) for a in public)
        where = host if host == shown else f"{host} ({shown})"
        raise EgressDenied(
            f"refusing to send report text to {where}: not a loopback or private address. " + _HINT
        )
