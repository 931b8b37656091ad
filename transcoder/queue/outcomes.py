"""How jobs record their outcomes: task and video states, failures, retries, progress.

Writes wait out a database outage (with_retries); progress writes just skip a beat.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from rq import get_current_job
from rq.exceptions import AbandonedJobError

from transcoder import webhooks
from transcoder.db import records
from transcoder.db.engine import DISCONNECTS, disconnect_reason, session_scope, with_retries
from transcoder.db.models import (
    FINAL_TASK,
    FINAL_VIDEO,
    Preview,
    Rendition,
    TaskStatus,
    Video,
    VideoStatus,
    utcnow,
)
from transcoder.errors import EncodeError, NotFound, TranscoderError
from transcoder.queue.context import Context, current

log = logging.getLogger("transcoder.worker")

PROGRESS_INTERVAL = 1.0
PROGRESS_OUTAGE_PAUSE = 10.0  # no progress writes for this long after one found no database


def failure_summary(failed: list[tuple[str, str | None]], *, total: int) -> str:
    """One line for a video: outputs grouped by their (often shared) reason."""
    by_reason: dict[str, list[str]] = {}
    for name, error in failed:
        by_reason.setdefault(error or "unknown error", []).append(name)
    parts = [f"{', '.join(names)}: {reason}" for reason, names in by_reason.items()]
    return f"{len(failed)} of {total} outputs failed ({'; '.join(parts)})"


def record_video_failure(video_id: str, exc: BaseException | None) -> None:
    """End a video in error after its plan job failed in a way it did not handle."""
    ctx = current()
    reason = (
        exc.reason
        if isinstance(exc, TranscoderError)
        else f"internal error while planning ({type(exc).__name__})"
    )
    with session_scope(ctx.engine) as session:
        video = video_or_none(session, video_id)
        if video is None or video.status in FINAL_VIDEO:
            return
        records.set_video_status(video, VideoStatus.ERROR, error=reason, detail=str(exc)[:4000])
    log.info("video %s ended in error: %s", video_id, reason)
    webhooks.emit(ctx, video_id, webhooks.VIDEO_FAILED)


def record_task_failure(record_id: str, exc: BaseException | None) -> None:
    """Mark a rendition or preview as failed after an error the job did not handle."""
    ctx = current()
    if isinstance(exc, TranscoderError):
        reason = exc.reason
    elif isinstance(exc, AbandonedJobError):
        reason = "the worker running it stopped before it finished, and no retry was left"
    else:
        reason = f"internal error ({type(exc).__name__})"
    with session_scope(ctx.engine) as session:
        task = records.get_task(session, record_id, lock=True)
        if task.status not in FINAL_TASK:
            task.status = TaskStatus.ERROR
            task.error = reason
            task.finished_at = utcnow()
        video_id = task.video_id
    log.info("video %s task %s failed: %s", video_id, record_id, reason)


def video_or_none(session, video_id: str) -> Video | None:
    """The video to plan, or None (logged) when this worker's database does not have it."""
    try:
        return records.get_video(session, video_id, lock=True)
    except NotFound:
        log.error(
            "video %s is not in this worker's database; do the submitter and the workers "
            "share DATABASE_URL?",
            video_id,
        )
        return None


def fail_video(ctx: Context, video_id: str, exc: TranscoderError) -> None:
    def write() -> None:
        with session_scope(ctx.engine) as session:
            video = records.get_video(session, video_id, lock=True)
            records.set_video_status(
                video, VideoStatus.ERROR, error=exc.reason, detail=exc.detail or None
            )

    with_retries(write, budget=ctx.settings.db_retry_seconds, what=f"error of video {video_id}")
    log.info("video %s ended in error: %s", video_id, exc.reason)
    webhooks.emit(ctx, video_id, webhooks.VIDEO_FAILED)


def start_task(task: Rendition | Preview) -> None:
    task.status = TaskStatus.RUNNING
    task.attempts += 1
    task.worker = worker_name()
    job = get_current_job()
    task.job_id = job.id if job else task.job_id
    task.started_at = utcnow()
    task.progress = 0.0


def task_failed(
    ctx: Context, record_id: str, video_id: str, name: str, exc: TranscoderError
) -> None:
    """Record a known error; raise it again if it is transient and a retry is left."""
    retry = exc.transient and retries_left() > 0
    fields: dict[str, Any] = {"error": exc.reason}
    if exc.detail:
        fields["stderr_tail"] = exc.detail
    if isinstance(exc, EncodeError):
        fields["exit_code"] = exc.exit_code
    if not retry:
        fields |= {"status": TaskStatus.ERROR, "finished_at": utcnow()}
    record(ctx, record_id, **fields)
    if retry:
        log.warning("video %s %s failed, will retry: %s", video_id, name, exc.reason)
        raise exc
    log.info("video %s %s failed: %s", video_id, name, exc.reason)


def record(ctx: Context, record_id: str, **fields) -> None:
    """Write fields on a rendition or preview row, waiting out a database outage."""

    def write() -> None:
        with session_scope(ctx.engine) as session:
            task = records.get_task(session, record_id)
            for name, value in fields.items():
                if hasattr(task, name):
                    setattr(task, name, value)

    with_retries(write, budget=ctx.settings.db_retry_seconds, what=f"record of task {record_id}")


def retries_left() -> int:
    job = get_current_job()
    if job is not None:
        return job.retries_left or 0
    from transcoder.queue.dispatch import inline_retries

    return getattr(inline_retries, "left", 0)


def worker_name() -> str:
    job = get_current_job()
    if job is not None and job.worker_name:
        return job.worker_name
    return f"inline@{socket.gethostname()}:{os.getpid()}"


class ProgressWriter:
    """Store a rendition's progress (and its video's) at most once a second."""

    def __init__(self, ctx: Context, rendition_id: str) -> None:
        self.ctx = ctx
        self.rendition_id = rendition_id
        self.last = 0.0

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_INTERVAL and fraction < 1.0:
            return
        self.last = now
        try:
            with session_scope(self.ctx.engine) as session:
                rendition = records.get_rendition(session, self.rendition_id)
                rendition.progress = round(fraction, 4)
                video = records.get_video(session, rendition.video_id)
                video.progress = records.weighted_progress(records.renditions_of(session, video.id))
                video.updated_at = utcnow()
        except DISCONNECTS as exc:
            # Progress is only for show: skip beats rather than hold up or fail the encode.
            log.debug(
                "rendition %s progress not stored: %s", self.rendition_id, disconnect_reason(exc)
            )
            self.last = now + PROGRESS_OUTAGE_PAUSE
