"""Where sources, renditions and previews are kept: a local directory or an S3-compatible bucket."""

from __future__ import annotations

from transcoder.settings import Settings
from transcoder.storage.base import Storage, rendition_key, source_key, video_prefix
from transcoder.storage.local import LocalStorage


def make_storage(settings: Settings) -> Storage:
    """The storage the settings name."""
    if settings.storage == "s3":
        from transcoder.storage.s3 import S3Storage

        return S3Storage.from_settings(settings)
    return LocalStorage(settings.resolved_storage_dir)


__all__ = ["LocalStorage", "Storage", "make_storage", "rendition_key", "source_key", "video_prefix"]
