"""Download links for stored objects: presigned URLs on S3, signed API paths for local files.

A local-storage link carries an expiry and an HMAC of the key, so a `<video>` element can
play it without sending the API key. The signing key comes from TRANSCODER_SIGNING_KEY, or
from a random key file kept in the storage directory that every process sharing that
storage reads.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path
from urllib.parse import quote, urlencode

from transcoder.settings import Settings

LINK_SECONDS = 6 * 3600


def download_url(settings: Settings, storage, key: str, *, expires: int = LINK_SECONDS) -> str:
    """A URL a client can fetch the object from, valid for `expires` seconds."""
    if settings.storage == "s3":
        return str(storage.url(key, expires=expires))
    deadline = int(time.time()) + expires
    query = urlencode({"expires": deadline, "sig": sign(settings, key, deadline)})
    return f"{settings.public_url.rstrip('/')}/files/{quote(key)}?{query}"


def sign(settings: Settings, key: str, deadline: int) -> str:
    message = f"{key}\n{deadline}".encode()
    return hmac.new(_signing_key(settings), message, hashlib.sha256).hexdigest()


def verify(settings: Settings, key: str, deadline: int, signature: str) -> bool:
    """True when the signature matches and the link has not expired."""
    if deadline < time.time():
        return False
    return hmac.compare_digest(sign(settings, key, deadline), signature)


def _signing_key(settings: Settings) -> bytes:
    configured = settings.signing_key.get_secret_value()
    if configured:
        return configured.encode()
    path = settings.resolved_storage_dir / ".signing-key"
    if not path.exists():
        _create_key_file(path)
    return path.read_bytes().strip()


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
