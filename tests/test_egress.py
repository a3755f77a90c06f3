"""The egress guard: report text only goes to loopback, private or allow-listed endpoints."""

from __future__ import annotations

import socket

import pytest

from extractors.llm.egress import (
    EgressDenied,
    check_endpoint,
    is_private_address,
    parse_allowed_hosts,
)
from extractors.settings import get_settings


@pytest.fixture(autouse=True)
def _no_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RRIEF_LLM_ALLOWED_HOSTS", raising=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "http://127.5.6.7/v1",
        "http://localhost:8000/v1",
        "http://LOCALHOST/v1",
        "http://gpu.localhost/v1",
        "http://[::1]:8000/v1",
        "http://10.1.2.3:8000/v1",
        "https://172.16.0.9/v1",
        "http://172.31.255.255/v1",
        "http://192.168.1.20:8000/v1",
        "http://169.254.10.10/v1",
        "http://[fd12:3456::1]:8000/v1",
        "http://[fe80::1]/v1",
        "http://[::ffff:10.0.0.1]/v1",
    ],
)
def test_loopback_and_private_addresses_are_allowed(url: str) -> None:
    check_endpoint(url)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://8.8.8.8/v1", "8.8.8.8"),
        ("https://203.0.113.5:443/v1", "203.0.113.5"),
        ("http://172.32.0.1/v1", "172.32.0.1"),  # just outside 172.16/12
        ("http://11.0.0.1/v1", "11.0.0.1"),
        ("http://100.64.0.1/v1", "100.64.0.1"),  # CGNAT: refused unless allow-listed
        ("http://0.0.0.0:8000/v1", "0.0.0.0"),
        ("http://[2001:4860:4860::8888]/v1", "2001:4860:4860::8888"),
        ("http://[::ffff:8.8.8.8]/v1", "::ffff:8.8.8.8"),
    ],
)
def test_public_addresses_are_refused_with_a_clear_message(url: str, shown: str) -> None:
    with pytest.raises(EgressDenied) as info:
        check_endpoint(url)
    message = str(info.value)
    assert f"refusing to send report text to {shown}" in message
    assert "not a loopback or private address" in message
    assert "RRIEF_LLM_ALLOWED_HOSTS" in message


def test_public_address_is_refused_before_any_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard decides from the URL alone: no socket is ever opened for a literal IP."""
    opened: list[object] = []

    def forbidden_connect(self: socket.socket, address: object) -> None:
        opened.append(address)
        raise AssertionError("the egress guard must not connect")

    monkeypatch.setattr(socket.socket, "connect", forbidden_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", forbidden_connect)
    with pytest.raises(EgressDenied):
        check_endpoint("http://8.8.8.8:443/v1")
    assert opened == []


def test_host_names_are_resolved_and_every_address_must_be_private() -> None:
    table = {
        "llm.radiology.internal": ["10.20.30.40"],
        "api.openai.com": ["203.0.113.5"],
        "split-horizon.example": ["10.0.0.5", "198.51.100.7"],
    }
    resolve = table.__getitem__
    check_endpoint("http://llm.radiology.internal:8000/v1", allowed_hosts=[], resolve=resolve)
    with pytest.raises(EgressDenied, match=r"to api\.openai\.com \(203\.0\.113\.5\): not a"):
        check_endpoint("https://api.openai.com/v1", allowed_hosts=[], resolve=resolve)
    with pytest.raises(EgressDenied, match=r"split-horizon\.example \(198\.51\.100\.7\)"):
        check_endpoint("http://split-horizon.example/v1", allowed_hosts=[], resolve=resolve)


def test_unresolvable_names_are_refused() -> None:
    def resolve(host: str) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(EgressDenied, match="does not resolve"):
        check_endpoint("http://gpu-node-7/v1", allowed_hosts=[], resolve=resolve)


def test_localhost_is_resolved_by_the_system_resolver_only_when_needed() -> None:
    # "localhost" is allowed by name; a real lookup of it must also come back as loopback.
    from extractors.llm.egress import resolve_host

    addresses = resolve_host("localhost")
    assert addresses
    import ipaddress

    assert all(is_private_address(ipaddress.ip_address(a)) for a in addresses)


def test_allow_list_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "RRIEF_LLM_ALLOWED_HOSTS",
        " llm.hospital.example , 203.0.113.5,100.64.0.0/10 ,[2001:db8::7]",
    )
    allowed = parse_allowed_hosts(get_settings().llm_allowed_hosts)

    def resolve(host: str) -> list[str]:
        raise AssertionError(f"an allow-listed name must not need resolving: {host}")

    check_endpoint("https://LLM.hospital.example/v1", allowed, resolve=resolve)
    check_endpoint("http://203.0.113.5:8000/v1", allowed)
    check_endpoint("http://100.101.102.103:8000/v1", allowed)  # inside the allow-listed CIDR
    check_endpoint("http://[2001:db8::7]:8000/v1", allowed)
    with pytest.raises(EgressDenied):
        check_endpoint("http://203.0.113.6/v1", allowed)
    with pytest.raises(EgressDenied):
        check_endpoint("http://100.128.0.1/v1", allowed)  # outside 100.64.0.0/10
    with pytest.raises(EgressDenied):
        check_endpoint("http://203.0.113.5:8000/v1")  # the setting is only what callers pass


def test_allow_list_networks_must_cover_every_resolved_address() -> None:
    table = {"mixed.example": ["100.64.0.9", "8.8.4.4"]}
    with pytest.raises(EgressDenied, match=r"8\.8\.4\.4"):
        check_endpoint(
            "http://mixed.example/v1", allowed_hosts=["100.64.0.0/10"], resolve=table.__getitem__
        )


@pytest.mark.parametrize("url", ["ftp://10.0.0.1/v1", "127.0.0.1:8000/v1", "http:///v1", ""])
def test_malformed_endpoints_are_refused(url: str) -> None:
    with pytest.raises(EgressDenied, match="endpoint"):
        check_endpoint(url)


def test_parse_allowed_hosts() -> None:
    assert parse_allowed_hosts("") == []
    assert parse_allowed_hosts("A.example, ,10.0.0.0/8,[::1]") == ["a.example", "10.0.0.0/8", "::1"]


def test_egress_denied_is_a_backend_error_so_the_cli_prints_it_cleanly() -> None:
    from extractors.extract.registry import BackendError

    assert issubclass(EgressDenied, BackendError)
