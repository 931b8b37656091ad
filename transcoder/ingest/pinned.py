"""One HTTP request sent to an address vetted by the SSRF guard, never to a fresh DNS answer.

The request URL names the vetted IP address instead of the host, so the client connects
there without resolving anything. The real host still goes where the server and TLS expect
it: in the Host header, and, for https, as the SNI name and the name the certificate is
verified against (httpcore's `sni_hostname` request extension). A DNS answer that changes
between the check and the connection (DNS rebinding) therefore cannot redirect it.

Each call uses its own transport (httpx's, without its Client): no pooled connection made
for one host is reused for another, redirects are never followed, proxies and certificate
bundles from the environment are ignored, and nothing logs the URL, whose query may carry a
token (httpx's Client logs every request's full URL at INFO).
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import httpx

from transcoder.errors import FetchFailed, InputError, URLRefused
from transcoder.ingest.addresses import Address, safe_url


@contextmanager
def pinned_request(
    method: str,
    url: httpx.URL,
    addresses: Sequence[Address],
    *,
    headers: Mapping[str, str],
    timeout: float,
    content: bytes | None = None,
    verify: ssl.SSLContext | None = None,
) -> Iterator[httpx.Response]:
    """Send a request to the first of `addresses` that accepts a connection; yield the response.

    The body is left unread (stream it with `iter_bytes`). Transport errors, also those raised
    while the body is read, become FetchFailed, or URLRefused for a certificate that does not
    verify. Credentials in the URL are sent as HTTP basic authentication.
    """
    sent = {"Host": url.netloc.decode("ascii"), **_basic_auth(url), **headers}
    extensions: dict[str, Any] = {"timeout": httpx.Timeout(timeout).as_dict()}
    if url.scheme == "https":
        extensions["sni_hostname"] = url.raw_host.decode("ascii")
    with httpx.HTTPTransport(verify=verify or True, trust_env=False) as transport:
        response = _send(transport, method, url, addresses, sent, extensions, content)
        try:
            yield response
        except httpx.HTTPError as exc:
            raise translate(exc, url) from exc
        finally:
            response.close()


def _send(
    transport: httpx.HTTPTransport,
    method: str,
    url: httpx.URL,
    addresses: Sequence[Address],
    headers: dict[str, str],
    extensions: dict[str, Any],
    content: bytes | None,
) -> httpx.Response:
    """Connect to each address in turn until one answers; only connection failures move on."""
    for index, address in enumerate(addresses):
        request = httpx.Request(
            method,
            url.copy_with(host=str(address), username=None, password=None),
            headers=headers,
            content=content,
            extensions=extensions,
        )
        try:
            response = transport.handle_request(request)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            if index + 1 < len(addresses) and not _certificate_error(exc):
                continue
            raise translate(exc, url) from exc
        except httpx.HTTPError as exc:
            raise translate(exc, url) from exc
        response.request = request
        return response
    raise URLRefused(f"refused: {safe_url(url)} has no address to connect to")


def translate(exc: httpx.HTTPError, url: httpx.URL) -> InputError | FetchFailed:
    """The farm's error for an httpx error: permanent for bad certificates and bodies."""
    where = safe_url(url)
    if _certificate_error(exc):
        return URLRefused(
            f"refused: the TLS certificate of {url.host} could not be verified", detail=str(exc)
        )
    if isinstance(exc, httpx.DecodingError):
        return InputError(f"{where} sent a body that could not be decoded", detail=str(exc))
    if isinstance(exc, httpx.TimeoutException):
        return FetchFailed(f"{where} timed out ({type(exc).__name__})", detail=str(exc))
    return FetchFailed(f"{where} failed: {type(exc).__name__} {exc}".strip(), detail=str(exc))


def _certificate_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(16):  # a chain is short; the bound guards against a cycle
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _basic_auth(url: httpx.URL) -> dict[str, str]:
    if not url.username and not url.password:
        return {}
    token = base64.b64encode(f"{url.username}:{url.password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}
