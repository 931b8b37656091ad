"""The storage interface and the key layout.

Keys are generated from record ids only (`videos/<id>/<name>.<ext>`); nothing a user
typed, such as an upload's file name, ever becomes part of a key or a path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class Storage(Protocol):
    """A flat key → bytes store. Writing an existing key replaces it."""

    def put(self, local: Path, key: str, content_type: str = "application/octet-stream") -> int:
        """Upload a local file under `key`; return its size in bytes."""

    def fetch(self, key: str, dest: Path) -> Path:
        """Make the object available as a local file at `dest` (or return a path to it)."""

    def exists(self, key: str) -> bool: ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix`; return how many."""

    def url(self, key: str, expires: int = 3600) -> str:
        """A URL a client can download the object from."""

    def check(self) -> None:
        """Raise StorageError unless the store is reachable and writable."""


def video_prefix(video_id: str) -> str:
    return f"videos/{_checked(video_id)}/"


def source_key(video_id: str) -> str:
    return f"{video_prefix(video_id)}source"


def rendition_key(video_id: str, filename: str) -> str:
    return f"{video_prefix(video_id)}{_checked(filename)}"


def _checked(part: str) -> str:
    # fullmatch: with match, `$` would also accept a part ending in a newline.
    if not _SAFE_NAME.fullmatch(part) or ".." in part:
        raise ValueError(f"unsafe storage key part: {part!r}")
    return part
