"""Accepting a video: a record, the source in storage (or a URL to import), the first job."""

from __future__ import annotations

import logging
from pathlib import Path

from transcoder import lifecycle
from transcoder.db import records
from transcoder.db.engine import session_scope
from transcoder.db.models import VideoStatus
from transcoder.errors import InputError
from transcoder.profiles import load_profile
from transcoder.queue.context import Context
from transcoder.storage import source_key

log = logging.getLogger("transcoder.submit")


def submit_file(ctx: Context, path: Path, *, profile: str | None = None) -> str:
    """Accept a local file and start its transcode; return the video id.

    In embedded mode (no Redis) the whole transcode runs before this returns.
    """
    video_id = accept_file(ctx, path, profile=profile)
    if not ctx.settings.embedded and ctx.engine.dialect.name == "sqlite":
        log.warning(
            "REDIS_URL is set but DATABASE_URL is not: only workers on this machine, with the "
            "same TRANSCODER_DATA_DIR, can see video %s",
            video_id,
        )
    lifecycle.start(ctx, video_id)
    return video_id


def accept_file(
    ctx: Context,
    path: Path,
    *,
    profile: str | None = None,
    name: str | None = None,
    callback_url: str | None = None,
) -> str:
    """Create a video record, store the file as its source and mark it queued.

    `name` is what the user called the file (an upload's file name); it is kept for display
    only and never becomes part of a path or key.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {printable(str(path))}")
    if not path.is_file():
        raise InputError(f"not a regular file: {printable(str(path))}")
    video_id = _new_video(ctx, name=name or path.name, profile=profile, callback_url=callback_url)
    ctx.storage.put(path, source_key(video_id))
    _mark_queued(ctx, video_id)
    log.info("video %s accepted from %r", video_id, name or path.name)
    return video_id


def accept_url(
    ctx: Context, url: str, *, profile: str | None = None, callback_url: str | None = None
) -> str:
    """Create a video record whose source an import job will fetch from `url`."""
    name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or url
    video_id = _new_video(
        ctx, name=name, profile=profile, callback_url=callback_url, source_url=url
    )
    _mark_queued(ctx, video_id)
    log.info("video %s accepted for import from %s", video_id, url.split("?", 1)[0])
    return video_id


def _new_video(
    ctx: Context,
    *,
    name: str,
    profile: str | None,
    callback_url: str | None,
    source_url: str | None = None,
) -> str:
    ladder = load_profile(profile or ctx.settings.profile)  # refused before anything is stored
    with session_scope(ctx.engine) as session:
        video = records.create_video(
            session,
            source_name=printable(name),
            profile=ladder.name,
            profile_spec=ladder.model_dump(mode="json"),
        )
        video.source_key = source_key(video.id)
        video.source_url = source_url
        video.callback_url = callback_url
        return video.id


def _mark_queued(ctx: Context, video_id: str) -> None:
    with session_scope(ctx.engine) as session:
        video = records.get_video(session, video_id, lock=True)
        records.set_video_status(video, VideoStatus.QUEUED)


def printable(name: str) -> str:
    """A file name as text that any database and terminal take: undecodable bytes and
    control characters become U+FFFD."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in text)
