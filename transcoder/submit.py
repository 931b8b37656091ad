"""Accepting a video: a record, the source in storage, and the first job queued."""

from __future__ import annotations

import logging
from pathlib import Path

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
    ctx.dispatcher.start(video_id)
    return video_id


def accept_file(ctx: Context, path: Path, *, profile: str | None = None) -> str:
    """Create a video record, store the file as its source and mark it queued."""
    profile = profile or ctx.settings.profile
    ladder = load_profile(profile)  # refuse an unknown or invalid profile before storing anything
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {printable(str(path))}")
    if not path.is_file():
        raise InputError(f"not a regular file: {printable(str(path))}")

    with session_scope(ctx.engine) as session:
        video = records.create_video(
            session,
            source_name=printable(path.name),
            profile=ladder.name,
            profile_spec=ladder.model_dump(mode="json"),
        )
        video_id = video.id
        video.source_key = source_key(video_id)
    ctx.storage.put(path, source_key(video_id))

    with session_scope(ctx.engine) as session:
        video = records.get_video(session, video_id, lock=True)
        records.set_video_status(video, VideoStatus.QUEUED)
    log.info("video %s accepted from %r (profile %s)", video_id, path.name, profile)
    return video_id


def printable(name: str) -> str:
    """A file name as text that any database and terminal take: undecodable bytes and
    control characters become U+FFFD."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in text)
