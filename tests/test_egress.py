"""The egress guard: report text only goes to loopback, private or allow-listed endpoints."""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from extractors.llm.egress import (
    EgressDenied,
    check_endpoint,
    is_private_address,
    parse_allowed_hosts,
    pinned_transport,
    redact_url,
    resolve_host,
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


def test_localhost_names_count_as_loopback_only_when_they_resolve_to_loopback() -> None:
    table = {
        "localhost": ["127.0.0.1", "::1"],
        "gpu.localhost": ["127.0.0.2"],
        "faked.localhost": ["10.1.1.1"],  # private, but not this machine: a resolver's answer
        "public.localhost": ["203.0.113.9"],
        "mixed.localhost": ["127.0.0.1", "198.51.100.1"],
    }
    resolve = table.__getitem__
    assert check_endpoint("http://localhost:8000/v1", resolve=resolve).addresses == (
        "127.0.0.1",
        "::1",
    )
    assert check_endpoint("http://gpu.localhost/v1", resolve=resolve).addresses == ("127.0.0.2",)
    for name, shown in (
        ("faked", "10.1.1.1"),
        ("public", "203.0.113.9"),
        ("mixed", "198.51.100.1"),
    ):
        with pytest.raises(EgressDenied, match=rf"{name}\.localhost \({shown}\): a \.localhost"):
            check_endpoint(f"http://{name}.localhost/v1", resolve=resolve)

    def unresolvable(host: str) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(EgressDenied, match="does not resolve"):
        check_endpoint("http://gpu.localhost/v1", resolve=unresolvable)


def test_the_system_resolver_gives_loopback_for_localhost() -> None:
    addresses = resolve_host("localhost")
    assert addresses
    assert all(is_private_address(ipaddress.ip_address(a)) for a in addresses)
    assert check_endpoint("http://localhost:8000/v1").addresses


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


# --- the connection goes to the checked address: servers on 127.0.0.0/8, a resolver stub -----
class HostEcho:
    """An HTTP(S) server on one loopback address answering with the Host header it got."""

    def __init__(self, address: str, ssl_context: ssl.SSLContext | None = None) -> None:
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.hits.append(self.headers.get("host", ""))
                body = json.dumps({"host": self.headers.get("host"), "at": address}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer((address, 0), Handler)
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers() -> Iterator[Callable[..., HostEcho]]:
    started: list[HostEcho] = []

    def start(address: str, ssl_context: ssl.SSLContext | None = None) -> HostEcho:
        started.append(HostEcho(address, ssl_context))
        return started[-1]

    yield start
    for server in started:
        server.close()


class Rebinding:
    """A resolver stub whose first answer passes the guard and whose later answers do not."""

    def __init__(self, first: list[str], later: list[str]) -> None:
        self.first, self.later, self.calls = first, later, 0

    def __call__(self, host: str) -> list[str]:
        self.calls += 1
        return self.first if self.calls == 1 else self.later


def test_requests_go_to_the_checked_address_not_a_second_dns_answer(
    servers: Callable[..., HostEcho],
) -> None:
    checked_server = servers("127.0.0.2")
    resolve = Rebinding(["127.0.0.2"], ["127.0.0.3"])  # a rebinding answer after the check
    checked = check_endpoint(f"http://llm.rebind.test:{checked_server.port}/v1", resolve=resolve)
    limits = httpx.Limits(max_connections=2)
    with httpx.Client(transport=pinned_transport(checked, limits)) as client:
        for _ in range(3):
            answer = client.get(f"http://llm.rebind.test:{checked_server.port}/v1/models").json()
            assert answer == {"host": f"llm.rebind.test:{checked_server.port}", "at": "127.0.0.2"}
        with pytest.raises(httpx.ConnectError, match="only the checked endpoint host"):
            client.get(f"http://127.0.0.3:{checked_server.port}/")  # any other host: refused
    assert resolve.calls == 1  # resolved once, by the guard
    assert len(checked_server.hits) == 3


def test_every_checked_address_is_tried_in_order(servers: Callable[..., HostEcho]) -> None:
    up = servers("127.0.0.5")
    with socket.socket() as probe:  # a port on 127.0.0.4 that nothing listens on
        probe.bind(("127.0.0.4", up.port))
        table = {"llm.two.test": ["127.0.0.4", "127.0.0.5"]}
        checked = check_endpoint(f"http://llm.two.test:{up.port}/", resolve=table.__getitem__)
        with httpx.Client(transport=pinned_transport(checked, httpx.Limits())) as client:
            assert client.get(f"http://llm.two.test:{up.port}/").json()["at"] == "127.0.0.5"


def test_tls_keeps_the_server_name_for_sni_and_the_certificate(
    servers: Callable[..., HostEcho], tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path, "llm.tls.test")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    seen_sni: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: seen_sni.append(name)
    server = servers("127.0.0.6", server_ctx)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    table = {"llm.tls.test": ["127.0.0.6"]}
    checked = check_endpoint(f"https://llm.tls.test:{server.port}/v1", resolve=table.__getitem__)
    with httpx.Client(transport=pinned_transport(checked, httpx.Limits(), client_ctx)) as client:
        answer = client.get(f"https://llm.tls.test:{server.port}/v1/models").json()
    assert answer["at"] == "127.0.0.6" and seen_sni == ["llm.tls.test"]


def self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    """A certificate for ``name`` (its own CA) and its key, written as PEM files."""
    import datetime

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
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_credentials_in_urls_never_reach_a_message() -> None:
    assert redact_url("http://user:s3cret@10.0.0.5:8000/v1") == "http://***@10.0.0.5:8000/v1"
    assert redact_url("https://a:b@c@host/v1?api-key=k") == "https://***@host/v1?***"
    assert redact_url("user:s3cret@host:8000/v1") == "***@host:8000/v1"
    for url in ("http://user:s3cret@8.8.8.8/v1", "ftp://user:s3cret@10.0.0.1/", "s3cret@"):
        with pytest.raises(EgressDenied) as err:
            check_endpoint(url)
        assert "s3cret" not in str(err.value)
