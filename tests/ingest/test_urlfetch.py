"""URL import behind the SSRF guard, against HTTP(S) servers on 127.0.0.1 that the tests start.

The fixtures in conftest.py fake DNS and refuse any connection that is not to loopback, so a
refusal that came too late would fail the test instead of sending a packet.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path

import pytest

from transcoder.errors import FetchFailed, InputError, URLRefused
from transcoder.ingest import check_public_url, fetch_to_file, is_public

BODY = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
LIMITS = {"max_bytes": 1024**2, "max_redirects": 3, "timeout": 5.0}


# -- a scripted HTTP server ----------------------------------------------------------------


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


Route = Callable[[BaseHTTPRequestHandler], None]


class LocalServer:
    """A threaded HTTP server on 127.0.0.1; each route writes its own response."""

    def __init__(self, wrap: Callable[[object], object] | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self.finished: dict[str, threading.Event] = {}
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        if wrap is not None:
            self.httpd.socket = wrap(self.httpd.socket)  # type: ignore[assignment]
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def route(self, path: str, handler: Route) -> None:
        self.routes[path] = handler
        self.finished[path] = threading.Event()

    def wait_finished(self, path: str, timeout: float = 10) -> None:
        assert self.finished[path].wait(timeout), f"the handler of {path} did not finish"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                server.requests.append(Seen(self.path, dict(self.headers.items())))
                try:
                    server.routes.get(path, _not_found)(self)
                finally:
                    if path in server.finished:
                        server.finished[path].set()

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> LocalServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


def send(
    h: BaseHTTPRequestHandler,
    code: int,
    body: bytes = b"",
    *,
    content_type: str = "text/plain",
    headers: dict[str, str] | None = None,
) -> None:
    h.send_response(code)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        h.send_header(name, value)
    h.end_headers()
    h.wfile.write(body)


def _not_found(h: BaseHTTPRequestHandler) -> None:
    send(h, 404, b"no such thing\n")


def video(h: BaseHTTPRequestHandler) -> None:
    send(h, 200, BODY, content_type="video/mp4")


def redirect(location: str) -> Route:
    return lambda h: send(h, 302, headers={"Location": location})


def status(code: int) -> Route:
    return lambda h: send(h, code, b"status page\n")


def endless(sent: list[int], *, chunk: int = 64 * 1024, total: int = 256 * 1024**2) -> Route:
    """A body without Content-Length that goes on until `total` or until the client leaves."""

    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "video/mp4")
        h.end_headers()
        block = b"\0" * chunk
        try:
            while sum(sent) < total:
                h.wfile.write(block)
                sent.append(len(block))
        except OSError:  # the client hung up, as it should
            pass

    return route


def declares(length: int, sends: bytes) -> Route:
    """Announce a Content-Length, send less, and hang up."""

    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "video/mp4")
        h.send_header("Content-Length", str(length))
        h.end_headers()
        with contextlib.suppress(OSError):
            h.wfile.write(sends)

    return route


def pause(seconds: float) -> Route:
    def route(h: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        with contextlib.suppress(OSError):
            send(h, 200, b"late")

    return route


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as local:
        local.route("/video.mp4", video)
        yield local


# -- the guard -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "169.254.169.254",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "198.18.0.1",
        "::1",
        "::",
        "fd00::1",
        "fe80::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "::127.0.0.1",
        "2002:a00:1::",  # 6to4 around 10.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 around 169.254.169.254
        "2001:db8::1",
    ],
)
def test_non_public_addresses_are_not_public(address):
    assert not is_public(ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_public(address):
    assert is_public(ip_address(address))


def test_guard_returns_the_addresses_it_vetted(dns, pretend_public):
    dns.add("media.example.test", ["127.0.0.1"])

    assert check_public_url("https://media.example.test/a.mp4") == [ip_address("127.0.0.1")]


def test_one_private_answer_among_public_ones_refuses_the_host(dns, pretend_public, connections):
    dns.add("mixed.example.test", ["127.0.0.1", "10.0.0.1"])

    with pytest.raises(URLRefused, match=r"resolves to 10\.0\.0\.1, which is not a public address"):
        fetch_to_file("http://mixed.example.test/x", Path("/nonexistent/x"), **LIMITS)
    assert connections == []


def test_an_unresolvable_host_is_refused(tmp_path):
    with pytest.raises(URLRefused, match=r"refused: cannot resolve host nowhere\.example\.test"):
        fetch_to_file("http://nowhere.example.test/x", tmp_path / "x", **LIMITS)


# -- fetching ------------------------------------------------------------------------------


def test_local_file_is_fetched_when_private_addresses_are_allowed(server, tmp_path):
    dest = tmp_path / "download"

    result = fetch_to_file(server.url("/video.mp4"), dest, allow_private=True, **LIMITS)

    assert dest.read_bytes() == BODY
    assert result.size == len(BODY)
    assert result.content_type == "video/mp4"
    assert result.redirects == 0
    assert result.final_url == server.url("/video.mp4")
    (request,) = server.requests
    assert request.headers["User-Agent"].startswith("transcoder/")


def test_the_same_local_server_is_refused_by_default_before_any_request(
    server, tmp_path, connections
):
    url = server.url("/video.mp4")

    with pytest.raises(URLRefused) as refused:
        fetch_to_file(url, tmp_path / "download", **LIMITS)

    assert refused.value.reason == (
        f"refused: {url} resolves to 127.0.0.1, which is not a public address"
    )
    assert not refused.value.transient
    assert server.requests == []
    assert connections == []
    assert not (tmp_path / "download").exists()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.1/x", "resolves to 10.0.0.1, which is not a public address"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "resolves to 169.254.169.254, which is not a public address",
        ),
        ("http://[::1]/", "resolves to ::1, which is not a public address"),
        ("http://[::ffff:127.0.0.1]/", "which is not a public address"),
        ("http://2130706433/", "resolves to 127.0.0.1"),  # 127.0.0.1 as one number
        ("http://0/", "resolves to 0.0.0.0"),
        ("file:///etc/passwd", "is not an http or https URL"),
        ("ftp://example.com/x", "is not an http or https URL"),
        ("gopher://example.com:70/_GET%20/", "is not an http or https URL"),
        ("javascript:alert(1)", "is not an http or https URL"),
        ("http:///x", "has no host"),
    ],
)
def test_unsafe_urls_are_refused_without_connecting(url, reason, tmp_path, connections):
    with pytest.raises(URLRefused, match=re.escape(reason)):
        fetch_to_file(url, tmp_path / "x", **LIMITS)
    assert connections == []


def test_localhost_by_name_is_refused(server, tmp_path, connections):
    with pytest.raises(URLRefused, match="which is not a public address"):
        fetch_to_file(server.url("/video.mp4", host="localhost"), tmp_path / "x", **LIMITS)
    assert server.requests == []
    assert connections == []


def test_redirects_are_followed_and_counted(server, tmp_path):
    server.route("/two", redirect("/one"))
    server.route("/one", redirect(server.url("/video.mp4")))

    result = fetch_to_file(server.url("/two"), tmp_path / "x", allow_private=True, **LIMITS)

    assert result.redirects == 2
    assert result.final_url == server.url("/video.mp4")
    assert [r.path for r in server.requests] == ["/two", "/one", "/video.mp4"]


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/internal",
        "http://[::1]/",
        "http://127.0.0.2:{port}/video.mp4",
        "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
    ],
)
def test_redirect_to_a_private_address_is_refused_before_it_is_contacted(
    target, server, dns, pretend_public, connections, tmp_path
):
    target = target.format(port=server.port)
    server.route("/away", redirect(target))
    dns.add("media.example.test", ["127.0.0.1"])

    with pytest.raises(URLRefused, match="which is not a public address"):
        fetch_to_file(server.url("/away", host="media.example.test"), tmp_path / "x", **LIMITS)

    assert [r.path for r in server.requests] == ["/away"]
    assert connections == [("127.0.0.1", server.port)]
    assert not (tmp_path / "x").exists()


def test_dns_rebinding_cannot_move_the_connection_off_the_vetted_address(
    server, dns, pretend_public, connections, tmp_path
):
    # First answer passes the guard; any later lookup would say 127.0.0.2 (private here).
    dns.add("rebind.example.test", ["127.0.0.1"], ["127.0.0.2"])
    url = server.url("/video.mp4", host="rebind.example.test")

    result = fetch_to_file(url, tmp_path / "x", **LIMITS)

    assert result.size == len(BODY)
    assert dns.lookups == ["rebind.example.test"]  # resolved once, by the guard
    assert connections == [("127.0.0.1", server.port)]
    (request,) = server.requests
    assert request.headers["Host"] == f"rebind.example.test:{server.port}"


def test_the_next_vetted_address_is_tried_when_one_refuses_connections(
    server, dns, connections, tmp_path
):
    dns.add("dual.example.test", ["::1", "127.0.0.1"])  # the server listens on IPv4 only

    url = server.url("/video.mp4", host="dual.example.test")
    result = fetch_to_file(url, tmp_path / "x", allow_private=True, **LIMITS)

    assert result.size == len(BODY)
    assert connections[-1] == ("127.0.0.1", server.port)


def test_too_many_redirects_are_refused(server, tmp_path):
    server.route("/loop", redirect("/loop"))

    with pytest.raises(URLRefused, match="redirects more than 3 times"):
        fetch_to_file(server.url("/loop"), tmp_path / "x", allow_private=True, **LIMITS)
    assert len(server.requests) == 4


def test_a_body_larger_than_the_limit_stops_early_and_leaves_no_file(server, tmp_path):
    sent: list[int] = []
    server.route("/huge", endless(sent))
    dest = tmp_path / "x"

    with pytest.raises(URLRefused, match="refused: the file is larger than 1048576 bytes"):
        fetch_to_file(server.url("/huge"), dest, allow_private=True, **LIMITS)

    assert not dest.exists()
    server.wait_finished("/huge")
    assert sum(sent) < 64 * 1024**2  # the server gave up long before its 256 MiB


def test_a_declared_length_over_the_limit_is_refused_before_reading(server, tmp_path):
    server.route("/declared", declares(10 * 1024**3, b"x" * 100))

    with pytest.raises(URLRefused, match="larger than 1048576 bytes"):
        fetch_to_file(server.url("/declared"), tmp_path / "x", allow_private=True, **LIMITS)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("code", [400, 403, 404, 410])
def test_client_errors_are_permanent(code, server, tmp_path):
    server.route("/status", status(code))

    with pytest.raises(InputError) as error:
        fetch_to_file(server.url("/status"), tmp_path / "x", allow_private=True, **LIMITS)

    assert not error.value.transient
    assert f"answered HTTP {code}" in error.value.reason
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("code", [500, 502, 503, 429])
def test_server_errors_and_throttling_are_transient(code, server, tmp_path):
    server.route("/status", status(code))

    with pytest.raises(FetchFailed) as error:
        fetch_to_file(server.url("/status"), tmp_path / "x", allow_private=True, **LIMITS)

    assert error.value.transient
    assert f"answered HTTP {code}" in error.value.reason


def test_a_timeout_is_transient(server, tmp_path):
    server.route("/slow", pause(0.6))
    limits = LIMITS | {"timeout": 0.2}

    with pytest.raises(FetchFailed, match="timed out") as error:
        fetch_to_file(server.url("/slow"), tmp_path / "x", allow_private=True, **limits)
    assert error.value.transient
    server.wait_finished("/slow")


def test_a_connection_cut_mid_body_is_transient_and_leaves_no_file(server, tmp_path):
    server.route("/cut", declares(100_000, b"x" * 1000))

    with pytest.raises(FetchFailed) as error:
        fetch_to_file(server.url("/cut"), tmp_path / "x", allow_private=True, **LIMITS)
    assert error.value.transient
    assert not (tmp_path / "x").exists()


def test_a_refused_connection_is_transient(tmp_path):
    with LocalServer() as gone:
        url = gone.url("/video.mp4")
    # The server is closed: nothing listens on its port any more.

    with pytest.raises(FetchFailed):
        fetch_to_file(url, tmp_path / "x", allow_private=True, **LIMITS)


def test_query_strings_never_reach_logs_or_messages(server, tmp_path, caplog):
    # Every INFO line from any library (httpx's client would log full URLs), and the farm's
    # own DEBUG lines. httpcore's DEBUG traces dump raw headers and are for debugging only.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="transcoder")
    server.route("/signed", redirect("/video.mp4?token=hop-secret"))
    server.route("/missing", status(404))

    fetch_to_file(
        server.url("/signed?token=first-secret"), tmp_path / "x", allow_private=True, **LIMITS
    )
    with pytest.raises(InputError) as error:
        fetch_to_file(
            server.url("/missing?token=third-secret"), tmp_path / "y", allow_private=True, **LIMITS
        )
    with pytest.raises(URLRefused) as refused:
        fetch_to_file(server.url("/x?token=fourth-secret"), tmp_path / "z", **LIMITS)

    assert server.requests[0].path == "/signed?token=first-secret"  # sent, just not logged
    text = caplog.text + error.value.reason + refused.value.reason
    assert "fetched" in caplog.text
    assert "secret" not in text


def test_environment_proxies_are_ignored(server, tmp_path, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")

    result = fetch_to_file(server.url("/video.mp4"), tmp_path / "x", allow_private=True, **LIMITS)
    assert result.size == len(BODY)


# -- https ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, Path]]:
    """A self-signed certificate and key for a host name, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")

    def make(host: str) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        cert_path, key_path = folder / f"{host}.crt", folder / f"{host}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_path, key_path

    return make


@pytest.fixture
def tls_server(certificate) -> Iterator[tuple[LocalServer, list[str], Path]]:
    """An https server for media.example.test; also the SNI names it was sent."""
    cert, key = certificate("media.example.test")
    names: list[str] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name) and None
    with LocalServer(wrap=lambda s: context.wrap_socket(s, server_side=True)) as local:
        local.route("/video.mp4", video)
        yield local, names, cert


def test_https_is_pinned_with_sni_and_verification_on_the_real_host(
    tls_server, dns, pretend_public, connections, tmp_path
):
    local, names, cert = tls_server
    dns.add("media.example.test", ["127.0.0.1"])
    trust = ssl.create_default_context(cafile=str(cert))

    url = local.url("/video.mp4", host="media.example.test", scheme="https")
    result = fetch_to_file(url, tmp_path / "x", verify=trust, **LIMITS)

    assert (tmp_path / "x").read_bytes() == BODY
    assert result.size == len(BODY)
    assert names == ["media.example.test"]
    assert connections == [("127.0.0.1", local.port)]


def test_https_with_a_certificate_for_another_host_is_refused(
    tls_server, certificate, dns, pretend_public, tmp_path
):
    local, _, cert = tls_server
    dns.add("other.example.test", ["127.0.0.1"])
    trust = ssl.create_default_context(cafile=str(cert))

    url = local.url("/video.mp4", host="other.example.test", scheme="https")
    with pytest.raises(URLRefused, match=r"TLS certificate of other\.example\.test"):
        fetch_to_file(url, tmp_path / "x", verify=trust, **LIMITS)
    assert local.requests == []
