"""The job functions the queue runs. Each takes one record id and reads like a recipe.

A job records its own outcome on its row. Errors the farm understands (TranscoderError)
end the task with a human reason, unless they are transient and retries are left, in which
case they are raised again for the queue to retry. Anything else is a bug: it escapes to the
worker boundary, which logs it and calls on_task_failure.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from transcoder import webhooks
from transcoder.db import records
from transcoder.db.engine import session_scope, with_retries
from transcoder.db.models import (
    FINAL_TASK,
    FINAL_VIDEO,
    TaskStatus,
    VideoStatus,
    utcnow,
)
from transcoder.encode.command import rendition_command
from transcoder.encode.preview import make_preview as render_preview
from transcoder.encode.runner import encode_timeout, run_ffmpeg
from transcoder.encode.verify import verify_rendition
from transcoder.errors import InputError, TranscoderError
from transcoder.ingest.urlfetch import fetch_to_file
from transcoder.media.info import MediaInfo
from transcoder.media.probe import check_limits, probe
from transcoder.profiles import Profile, load_profile
from transcoder.profiles.plan import PreviewPlan, RenditionPlan, plan_preview, plan_renditions
from transcoder.queue.context import Context, current
from transcoder.queue.outcomes import (
    ProgressWriter,
    fail_video,
    failure_summary,
    record,
    record_task_failure,
    record_video_failure,
    retries_left,
    start_task,
    task_failed,
    video_or_none,
)
from transcoder.storage import rendition_key

log = logging.getLogger("transcoder.worker")

CONTENT_TYPES = {"mp4": "video/mp4", "webm": "video/webm", "jpg": "image/jpeg"}


def import_video(video_id: str) -> None:
    """Fetch the video's source URL into storage (public addresses only), then plan it."""
    ctx = current()
    with session_scope(ctx.engine) as session:
        video = video_or_none(session, video_id)
        if video is None or video.status not in (VideoStatus.PENDING, VideoStatus.QUEUED):
            return
        url, key = video.source_url, video.source_key
    if not url:
        fail_video(ctx, video_id, InputError("the video has no source URL to import"))
        return

    s = ctx.settings
    workdir = _workdir(ctx, video_id, "import")
    try:
        fetched = fetch_to_file(
            url,
            workdir / "download",
            max_bytes=s.max_upload_bytes,
            max_redirects=s.url_import_max_redirects,
            timeout=s.url_import_timeout,
            allow_private=s.allow_private_urls,
        )
        ctx.storage.put(workdir / "download", key)
    except TranscoderError as exc:
        if exc.transient and retries_left() > 0:
            log.warning("video %s import failed, will retry: %s", video_id, exc.reason)
            raise
        fail_video(ctx, video_id, exc)
        return
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    log.info("video %s imported: %d bytes", video_id, fetched.size)
    plan_video(video_id)


def plan_video(video_id: str) -> None:
    """Probe the source, check limits, plan renditions and preview, and fan the work out."""
    ctx = current()
    with session_scope(ctx.engine) as session:
        video = video_or_none(session, video_id)
        if video is None:
            return
        if video.status not in (VideoStatus.PENDING, VideoStatus.QUEUED):
            log.info("video %s is %s already; plan skipped", video_id, video.status)
            return
        records.set_video_status(video, VideoStatus.ENCODING)
        source_key, profile_name, spec = video.source_key, video.profile, video.profile_spec

    workdir = _workdir(ctx, video_id, "plan")
    try:
        source = ctx.storage.fetch(source_key, workdir / "source")
        info = probe(source, ctx.settings.ffprobe_path)
        check_limits(
            info,
            max_pixels=ctx.settings.max_input_pixels,
            max_duration=ctx.settings.max_duration_seconds,
        )
        profile = Profile.model_validate(spec) if spec else load_profile(profile_name)
        plans = plan_renditions(info, profile)
        preview = plan_preview(info, profile)
    except TranscoderError as exc:
        fail_video(ctx, video_id, exc)
        return
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    with session_scope(ctx.engine) as session:
        video = records.get_video(session, video_id, lock=True)
        video.probe = info.model_dump(mode="json")
        rows = records.add_renditions(session, video_id=video_id, plans=plans)
        preview_row = records.add_preview(session, video_id=video_id, plan=preview)
        rendition_ids = [r.id for r in rows]
        preview_id = preview_row.id
        for row in rows:
            row.status = TaskStatus.QUEUED
        preview_row.status = TaskStatus.QUEUED
    log.info(
        "video %s planned: %s; %d renditions (%s)",
        video_id,
        info.summary(),
        len(plans),
        ", ".join(p.name for p in plans),
    )

    job_ids = ctx.dispatcher.fan_out(video_id, rendition_ids, preview_id, info.duration)
    if job_ids:
        with session_scope(ctx.engine) as session:
            for row in records.renditions_of(session, video_id):
                row.job_id = job_ids.get(row.id, row.job_id)
            stored_preview = records.preview_of(session, video_id)
            if stored_preview is not None:
                stored_preview.job_id = job_ids.get(stored_preview.id, stored_preview.job_id)


def encode_rendition(rendition_id: str) -> None:
    """Encode one rendition, verify it, store it and record the result."""
    ctx = current()
    with session_scope(ctx.engine) as session:
        rendition = records.get_rendition(session, rendition_id, lock=True)
        if rendition.status == TaskStatus.SUCCEEDED:
            log.info("rendition %s already succeeded; nothing to do", rendition_id)
            return
        video = records.get_video(session, rendition.video_id)
        if video.status == VideoStatus.DELETED:
            return
        start_task(rendition)
        video_id, source_key = video.id, video.source_key
        plan = RenditionPlan.model_validate(rendition.plan)

    workdir = _workdir(ctx, video_id, rendition_id)
    output = workdir / plan.filename
    try:
        source = ctx.storage.fetch(source_key, workdir / "source")
        threads = ctx.settings.threads_per_job()
        args = rendition_command(
            plan, source, output, threads=threads, ffmpeg_bin=ctx.settings.ffmpeg_path
        )
        record(ctx, rendition_id, command=subprocess.list2cmdline(args))

        s = ctx.settings
        result = run_ffmpeg(
            args,
            timeout=encode_timeout(
                plan.duration, base=s.encode_timeout_base, factor=s.encode_timeout_factor
            ),
            duration=plan.duration,
            on_progress=ProgressWriter(ctx, rendition_id),
            memory_mb=s.ffmpeg_memory_mb,
        )
        # Kept before verification, so an output that fails it still shows what ffmpeg said.
        record(
            ctx,
            rendition_id,
            exit_code=result.exit_code,
            stderr_tail=result.stderr_tail or None,
            encode_seconds=round(result.seconds, 2),
        )
        out_info = verify_rendition(output, plan, ffprobe=s.ffprobe_path)
        key = rendition_key(video_id, plan.filename)
        size = ctx.storage.put(output, key, CONTENT_TYPES[plan.format.extension])
    except TranscoderError as exc:
        task_failed(ctx, rendition_id, video_id, plan.name, exc)
        return
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    record(
        ctx,
        rendition_id,
        status=TaskStatus.SUCCEEDED,
        progress=1.0,
        storage_key=key,
        size_bytes=size,
        duration=out_info.duration,
        measured_kbps=_kbps(size, out_info),
        error=None,
        finished_at=utcnow(),
    )
    webhooks.emit(ctx, video_id, webhooks.RENDITION_READY, rendition_id)
    log.info(
        "video %s rendition %s succeeded: %dx%d, %d bytes, %.1f s of encoding",
        video_id,
        plan.name,
        plan.width,
        plan.height,
        size,
        result.seconds,
    )


def make_preview(preview_id: str) -> None:
    """Make the poster and thumbnails and store them."""
    ctx = current()
    with session_scope(ctx.engine) as session:
        preview = records.get_preview(session, preview_id, lock=True)
        if preview.status == TaskStatus.SUCCEEDED:
            return
        video = records.get_video(session, preview.video_id)
        if video.status == VideoStatus.DELETED:
            return
        start_task(preview)
        video_id, source_key = video.id, video.source_key
        plan = PreviewPlan.model_validate(preview.plan)

    workdir = _workdir(ctx, video_id, preview_id)
    try:
        source = ctx.storage.fetch(source_key, workdir / "source")
        images = render_preview(
            plan,
            source,
            workdir,
            threads=ctx.settings.threads_per_job(),
            ffmpeg_bin=ctx.settings.ffmpeg_path,
            memory_mb=ctx.settings.ffmpeg_memory_mb,
        )
        stored = []
        for image in images:
            key = rendition_key(video_id, image.path.name)
            size = ctx.storage.put(image.path, key, CONTENT_TYPES["jpg"])
            stored.append(
                {
                    "kind": image.kind,
                    "key": key,
                    "width": image.width,
                    "height": image.height,
                    "size_bytes": size,
                }
            )
    except TranscoderError as exc:
        task_failed(ctx, preview_id, video_id, "preview", exc)
        return
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    record(
        ctx,
        preview_id,
        status=TaskStatus.SUCCEEDED,
        images=stored,
        error=None,
        finished_at=utcnow(),
    )
    log.info("video %s preview succeeded: %d images", video_id, len(stored))


def finalize_video(video_id: str) -> None:
    """Once every task has ended: the video succeeded if all did, else it is in error."""
    ctx = current()
    outcome = with_retries(
        lambda: _settle(ctx, video_id),
        budget=ctx.settings.db_retry_seconds,
        what=f"finalize of video {video_id}",
    )
    if outcome is None:
        return
    status, error, count = outcome
    if status == VideoStatus.SUCCEEDED:
        log.info("video %s succeeded: %d renditions and a preview", video_id, count)
        webhooks.emit(ctx, video_id, webhooks.VIDEO_SUCCEEDED)
    else:
        log.info("video %s ended in error: %s", video_id, error)
        webhooks.emit(ctx, video_id, webhooks.VIDEO_FAILED)


def _settle(ctx: Context, video_id: str) -> tuple[VideoStatus, str | None, int] | None:
    """Decide and record the video's outcome; None when it had one already."""
    with session_scope(ctx.engine) as session:
        video = records.get_video(session, video_id, lock=True)
        if video.status in FINAL_VIDEO:
            return None
        tasks = [*records.renditions_of(session, video_id)]
        preview = records.preview_of(session, video_id)
        named = [(r.name, r) for r in tasks] + ([("preview", preview)] if preview else [])
        for _, task in named:
            if task.status not in FINAL_TASK:
                task.status = TaskStatus.ERROR
                task.error = task.error or "the job ended without recording a result"
        failed = [(name, task.error) for name, task in named if task.status == TaskStatus.ERROR]
        video.progress = records.weighted_progress(tasks)
        if failed:
            reason = failure_summary(failed, total=len(named))
            first = next(t for _, t in named if t.status == TaskStatus.ERROR)
            records.set_video_status(
                video, VideoStatus.ERROR, error=reason, detail=first.stderr_tail
            )
        else:
            records.set_video_status(video, VideoStatus.SUCCEEDED)
        return video.status, video.error, len(tasks)


def on_plan_failure(job, connection, exc_type, exc, traceback) -> None:
    """RQ failure callback of the plan job: the video must not stay in 'encoding'."""
    record_video_failure(job.args[0], exc)


def on_task_failure(job, connection, exc_type, exc, traceback) -> None:
    """RQ failure callback: when no retry is left, record the error on the task's row."""
    if job.retries_left:
        return
    record_task_failure(job.args[0], exc)


# -- helpers ---------------------------------------------------------------------------------


def _workdir(ctx: Context, video_id: str, name: str) -> Path:
    path = ctx.settings.resolved_work_dir / video_id / f"{name}-{os.getpid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _kbps(size: int, info: MediaInfo) -> int | None:
    return round(size * 8 / info.duration / 1000) if info.duration else None
