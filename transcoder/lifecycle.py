"""Changing a video after submission: deleting (cancelling its work) and retrying failures."""

from __future__ import annotations

import logging

from transcoder.db import records
from transcoder.db.engine import session_scope
from transcoder.db.models import Preview, Rendition, TaskStatus, VideoStatus
from transcoder.errors import NotFound, TranscoderError
from transcoder.queue.context import Context
from transcoder.storage import video_prefix

log = logging.getLogger("transcoder.lifecycle")


class Conflict(TranscoderError):
    """The video is not in a state that allows the change."""


def delete_video(ctx: Context, video_id: str) -> int:
    """Stop the video's jobs, delete its files and mark it deleted; return files removed.

    The status changes first, under the row lock, so a job that starts afterwards sees the
    video is gone and does nothing; running jobs are stopped and their ffmpeg with them.
    """
    with session_scope(ctx.engine) as session:
        video = records.get_video(session, video_id, lock=True)
        if video.status == VideoStatus.DELETED:
            raise NotFound(f"no video with id {video_id}")
        records.set_video_status(video, VideoStatus.DELETED)
        tasks = [*records.renditions_of(session, video_id)]
        preview = records.preview_of(session, video_id)
        job_ids = [j for j in [video.job_id, *(t.job_id for t in tasks)] if j]
        if preview and preview.job_id:
            job_ids.append(preview.job_id)
        every: list[Rendition | Preview] = [*tasks, *([preview] if preview else [])]
        for task in every:
            if task.status not in (TaskStatus.SUCCEEDED, TaskStatus.ERROR):
                task.status = TaskStatus.ERROR
                task.error = "cancelled: the video was deleted"

    stopped = ctx.dispatcher.cancel(job_ids)
    removed = ctx.storage.delete_prefix(video_prefix(video_id))
    log.info("video %s deleted: %d jobs stopped, %d files removed", video_id, stopped, removed)
    return removed


def retry_video(ctx: Context, video_id: str) -> None:
    """Run again only what failed: the plan (if nothing was planned) or the failed outputs."""
    with session_scope(ctx.engine) as session:
        video = records.get_video(session, video_id, lock=True)
        if video.status == VideoStatus.DELETED:
            raise NotFound(f"no video with id {video_id}")
        if video.status != VideoStatus.ERROR:
            raise Conflict(f"only a video in error can be retried; this one is {video.status}")
        tasks = list(records.renditions_of(session, video_id))
        preview = records.preview_of(session, video_id)
        needs_import = bool(video.source_url) and not ctx.storage.exists(video.source_key)
        if not tasks:
            records.set_video_status(video, VideoStatus.QUEUED)
        else:
            records.set_video_status(video, VideoStatus.ENCODING)
        failed = [t for t in tasks if t.status == TaskStatus.ERROR]
        for task in failed:
            task.status, task.error, task.progress = TaskStatus.QUEUED, None, 0.0
        preview_id = None
        if preview is not None and preview.status == TaskStatus.ERROR:
            preview.status, preview.error = TaskStatus.QUEUED, None
            preview_id = preview.id
        failed_ids = [t.id for t in failed]
        duration = float((video.probe or {}).get("duration") or 0)

    if not tasks:
        job_id = ctx.dispatcher.start(video_id, import_first=needs_import)
        _remember_job(ctx, video_id, job_id)
    else:
        job_ids = ctx.dispatcher.fan_out(video_id, failed_ids, preview_id, duration)
        with session_scope(ctx.engine) as session:
            for task_id, job_id in job_ids.items():
                records.get_task(session, task_id).job_id = job_id
    log.info("video %s retried: %d outputs again", video_id, len(failed_ids))


def start(ctx: Context, video_id: str, *, import_first: bool = False) -> None:
    """Hand a freshly accepted video to the queue and remember its first job."""
    _remember_job(ctx, video_id, ctx.dispatcher.start(video_id, import_first=import_first))


def _remember_job(ctx: Context, video_id: str, job_id: str | None) -> None:
    if job_id is None:
        return
    with session_scope(ctx.engine) as session:
        records.get_video(session, video_id).job_id = job_id
