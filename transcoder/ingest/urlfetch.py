"""Import a source from a URL: follow redirects by hand, vet every hop, stream to a file.

Every hop goes through the SSRF guard (check_public_url) and is sent to the addresses the
guard vetted (pinned_request), so neither a redirect nor a changed DNS answer can point
the farm at a private, loopback or metadata address. Logs and error messages carry
scheme://host/path only: query strings and credentials may hold tokens.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx

from transcoder import __version__
from transcoder.errors import FetchFailed, InputError, URLRefused
from transcoder.ingest.addresses import check_public_url, parse_url, safe_url
from transcoder.ingest.pinned import pinned_request

__all__ = ["FetchResult", "check_public_url", "fetch_to_file", "safe_url"]

log = logging.getLogger("transcoder.ingest")

USER_AGENT = f"transcoder/{__version__}"
CHUNK_BYTES = 256 * 1024
# 4xx answers that say "later", not "never".
TRANSIENT_CLIENT_ERRORS = frozenset({408, 429})


@dataclass(frozen=True)
class FetchResult:
    final_url: str  # the URL the file came from, after redirects (query included)
    size: int
    content_type: str | None
    redirects: int


def fetch_to_file(
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    max_redirects: int,
    timeout: float,
    allow_private: bool = False,
    user_agent: str = USER_AGENT,
    verify: ssl.SSLContext | None = None,
) -> FetchResult:
    """Download `url` to `dest`, which is removed again if the download fails.

    `timeout` bounds connecting and each wait for data, not the whole download. `verify`
    replaces the default CA bundle (certifi's), for a private CA or a test certificate.
    """
    current = parse_url(url)
    headers = {"User-Agent": user_agent, "Accept": "*/*", "Accept-Encoding": "identity"}
    for hop in range(max_redirects + 1):
        addresses = check_public_url(str(current), allow_private=allow_private)
        with pinned_request(
            "GET", current, addresses, headers=headers, timeout=timeout, verify=verify
        ) as response:
            if response.is_redirect:
                current = _redirect_target(current, response)
                log.debug("%s redirects to %s", safe_url(url), safe_url(current))
                continue
            _check_status(response, current)
            size = _save(response, dest, max_bytes=max_bytes)
            content_type = response.headers.get("Content-Type")
        log.info(
            "fetched %s: %d bytes of %s after %d redirects",
            safe_url(current),
            size,
            content_type or "unknown type",
            hop,
        )
        return FetchResult(
            final_url=str(current), size=size, content_type=content_type, redirects=hop
        )
    raise URLRefused(f"refused: {safe_url(url)} redirects more than {max_redirects} times")


def _redirect_target(current: httpx.URL, response: httpx.Response) -> httpx.URL:
    """The absolute URL a redirect points to (vetted like any other hop by the caller)."""
    try:
        return current.join(response.headers["Location"])
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise URLRefused(f"refused: {safe_url(current)} redirects to an invalid URL") from exc


def _check_status(response: httpx.Response, url: httpx.URL) -> None:
    """Raise for anything but a success: 5xx (and 408, 429) may pass, other answers will not."""
    code = response.status_code
    if 200 <= code < 300:
        return
    reason = f"{safe_url(url)} answered HTTP {code} {response.reason_phrase}".rstrip()
    if code >= 500 or code in TRANSIENT_CLIENT_ERRORS:
        raise FetchFailed(reason)
    raise InputError(reason)


def _save(response: httpx.Response, dest: Path, *, max_bytes: int) -> int:
    """Stream the body to dest, stopping as soon as it outgrows max_bytes."""
    too_large = URLRefused(f"refused: the file is larger than {max_bytes} bytes")
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    size = 0
    try:
        with open(dest, "wb") as out:
            for chunk in response.iter_bytes(CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise too_large
                out.write(chunk)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return size
