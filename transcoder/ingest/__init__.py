"""Outbound HTTP behind one SSRF guard: importing sources from URLs, and the same guard for
webhooks."""

from transcoder.ingest.addresses import check_public_url, is_public, parse_url, safe_url
from transcoder.ingest.pinned import pinned_request
from transcoder.ingest.urlfetch import FetchResult, fetch_to_file

__all__ = [
    "FetchResult",
    "check_public_url",
    "fetch_to_file",
    "is_public",
    "parse_url",
    "pinned_request",
    "safe_url",
]
