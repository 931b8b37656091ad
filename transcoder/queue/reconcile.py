"""Putting back work that Redis lost, from what the database says should be happening.

Redis only carries jobs. When its contents are gone (a restart without persistence, a flush,
a failover to an empty replica), videos would stay queued or encoding for ever. reconcile()
looks at every such video that has been left alone for a while and enqueues again whatever
no longer has a job; the jobs are idempotent, so work already done is skipped. Workers run
it at start-up and then periodically, one worker at a time under a Redis lock.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis.exceptions import LockError, RedisError
from rq.exceptions import DeserializationError
from rq.job import Job, JobStatus
from rq.registry import DeferredJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from transcoder.db import records
from transcoder.db.engine import get_engine, session_scope
from transcoder.db.models import (
    FINAL_TASK,
    Preview,
    Rendition,
    TaskStatus,
    Video,
    VideoStatus,
    utcnow,
)
from transcoder.queue.context import Context
from transcoder.queue.dispatch import JOBS, RQDispatcher, make_dispatcher
from transcoder.settings import Settings
from transcoder.storage import make_storage

log = logging.getLogger("transcoder.reconcile")

GRACE_SECONDS = 30.0
LOCK_SECONDS = 300
ACTIVE = (VideoStatus.QUEUED, VideoStatus.ENCODING)
ENDED = frozenset({JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED})
PLAN_JOBS = frozenset({f"{JOBS}.plan_video", f"{JOBS}.import_video"})
FINALIZE_JOB = f"{JOBS}.finalize_video"


@dataclass
class ReconcileReport:
    """What one pass looked at and put back."""

    checked: int = 0  # queued or encoding videos left alone longer than the grace period
    restarted: int = 0  # videos whose plan (or import) job was enqueued again
    resumed: int = 0  # encoding videos whose lost renditions or preview were enqueued again
    tasks: int = 0  # the renditions and previews enqueued again for those
    finalized: int = 0  # videos whose tasks had all ended but that were never finalized
    skipped: bool = False  # embedded mode, or another worker was reconciling

    @property
    def put_back(self) -> int:
        return self.restarted + self.resumed + self.finalized


def reconcile(
    ctx: Context, *, grace: float = GRACE_SECONDS, lock_seconds: int = LOCK_SECONDS
) -> ReconcileReport:
    """Enqueue again the work of queued and encoding videos that Redis no longer holds.

    Only videos whose row has not changed for `grace` seconds are looked at, so one being
    planned or encoded right now is left alone. A no-op in embedded mode, and while another
    process holds the lock.
    """
    dispatcher = ctx.dispatcher
    if ctx.settings.embedded or not isinstance(dispatcher, RQDispatcher):
        return ReconcileReport(skipped=True)
    lock = dispatcher.redis.lock(f"{ctx.settings.queue_prefix}:reconcile", timeout=lock_seconds)
    if not lock.acquire(blocking=False):
        log.debug("another worker is reconciling; this pass is skipped")
        return ReconcileReport(skipped=True)
    try:
        return _reconcile(ctx, _Jobs(dispatcher), utcnow() - timedelta(seconds=grace))
    finally:
        with contextlib.suppress(LockError):  # it expired during a very slow pass
            lock.release()


def _reconcile(ctx: Context, jobs: _Jobs, cutoff: datetime) -> ReconcileReport:
    report = ReconcileReport()
    with session_scope(ctx.engine) as session:
        candidates = session.exec(
            select(Video.id)
            .where(col(Video.status).in_(ACTIVE), col(Video.updated_at) < cutoff)
            .order_by(col(Video.updated_at))
        ).all()
    for video_id in candidates:
        report.checked += 1
        # One transaction per video, holding its rows while jobs are enqueued: a job that
        # starts at once waits for the commit, so it sees the rows as reconciled.
        with session_scope(ctx.engine) as session:
            video = session.exec(
                select(Video)
                .where(
                    Video.id == video_id,
                    col(Video.status).in_(ACTIVE),
                    col(Video.updated_at) < cutoff,
                )
                .with_for_update(skip_locked=True)
            ).first()
            if video is None:  # it moved on since, or a job holds it right now
                continue
            tasks = _tasks_of(session, video_id)
            if not tasks:
                _restart(ctx, jobs, video, report)
            else:
                _resume(ctx, jobs, session, video, tasks, cutoff, report)
    return report


def _restart(ctx: Context, jobs: _Jobs, video: Video, report: ReconcileReport) -> None:
    """A video without renditions (queued, or its plan died mid-way): plan it again if no
    plan or import job of it is left."""
    if not jobs.ended(video.job_id) or jobs.of_video(video.id, PLAN_JOBS):
        return
    import_first = bool(video.source_url) and not ctx.storage.exists(video.source_key)
    was = video.status
    records.set_video_status(video, VideoStatus.QUEUED)
    video.job_id = ctx.dispatcher.start(video.id, import_first=import_first)
    report.restarted += 1
    log.info(
        "video %s put back: %s without a job; enqueued %s job %s",
        video.id,
        was,
        "import" if import_first else "plan",
        video.job_id,
    )


def _resume(
    ctx: Context,
    jobs: _Jobs,
    session: Session,
    video: Video,
    tasks: list[Rendition | Preview],
    cutoff: datetime,
    report: ReconcileReport,
) -> None:
    """An encoding video: enqueue again the outputs whose jobs are gone, or finalize it."""
    unfinished = [t for t in tasks if t.status not in FINAL_TASK]
    if not unfinished:
        _finalize_if_forgotten(ctx, jobs, session, video, len(tasks), cutoff, report)
        return
    lost = [t for t in unfinished if _job_is_gone(jobs, video.id, t)]
    # While any output still has a job, its finalize settles the video (a new finalize
    # depending on part of the outputs could settle it before the others end).
    if len(lost) < len(unfinished) or not _drop_finalizers(jobs, video.id):
        return

    preview_id = None
    for task in lost:
        task.status, task.error, task.progress = TaskStatus.QUEUED, None, 0.0
        if isinstance(task, Preview):
            preview_id = task.id
    rendition_ids = [t.id for t in lost if isinstance(t, Rendition)]
    duration = float((video.probe or {}).get("duration") or 0)
    job_ids = ctx.dispatcher.fan_out(video.id, rendition_ids, preview_id, duration)
    for task in lost:
        task.job_id = job_ids.get(task.id, task.job_id)
    video.updated_at = utcnow()
    report.resumed += 1
    report.tasks += len(lost)
    log.info(
        "video %s put back: %d of %d outputs had lost their jobs (%s); enqueued them again",
        video.id,
        len(lost),
        len(tasks),
        ", ".join(t.name if isinstance(t, Rendition) else "preview" for t in lost),
    )


def _job_is_gone(jobs: _Jobs, video_id: str, task: Rendition | Preview) -> bool:
    if task.job_id:
        return jobs.ended(task.job_id)
    # No job id yet: plan's fan-out is still recording them if the finalize it enqueued last
    # is waiting.
    return not jobs.of_video(video_id, {FINALIZE_JOB})


def _drop_finalizers(jobs: _Jobs, video_id: str) -> bool:
    """Cancel the video's waiting finalize jobs (they wait on jobs that are gone; the new
    fan-out brings its own); False when one is running already."""
    finalizers = jobs.of_video(video_id, {FINALIZE_JOB})
    if any(j.get_status(refresh=False) == JobStatus.STARTED for j in finalizers):
        return False
    for job in finalizers:
        job.cancel()
    return True


def _finalize_if_forgotten(
    ctx: Context,
    jobs: _Jobs,
    session: Session,
    video: Video,
    count: int,
    cutoff: datetime,
    report: ReconcileReport,
) -> None:
    """Every output has ended but the video is still encoding: finalize it, unless an output
    ended only just now or a finalize is already waiting in the queue or running."""
    recent = [
        session.exec(
            select(model.id).where(model.video_id == video.id, col(model.finished_at) >= cutoff)
        ).first()
        for model in (Rendition, Preview)
    ]
    if any(recent):
        return
    pending = (JobStatus.QUEUED, JobStatus.STARTED)
    if any(j.get_status(refresh=False) in pending for j in jobs.of_video(video.id, {FINALIZE_JOB})):
        return
    job_id = ctx.dispatcher.finalize(video.id)
    video.updated_at = utcnow()
    report.finalized += 1
    log.info(
        "video %s put back: all %d outputs ended but it was never finalized; enqueued job %s",
        video.id,
        count,
        job_id,
    )


def _tasks_of(session: Session, video_id: str) -> list[Rendition | Preview]:
    """The video's renditions and preview, locked, in the order finalize locks them."""
    query = select(Rendition).where(Rendition.video_id == video_id).with_for_update()
    renditions: list[Rendition | Preview] = list(session.exec(query).all())
    preview = records.preview_of(session, video_id, lock=True)
    return [*renditions, *([preview] if preview else [])]


class _Jobs:
    """What Redis still holds: job states by id, and the control queue's jobs by video."""

    def __init__(self, dispatcher: RQDispatcher) -> None:
        self.redis = dispatcher.redis
        self.control = dispatcher.control
        self._by_video: dict[str, list[Job]] | None = None

    def ended(self, job_id: str | None) -> bool:
        """True when Redis has no such job, or it has finished, failed or been stopped."""
        if not job_id:
            return True
        status = self.redis.hget(Job.key_for(job_id), "status")
        if status is None:
            return True
        return (status.decode() if isinstance(status, bytes) else status) in ENDED

    def of_video(self, video_id: str, functions: set[str] | frozenset[str]) -> list[Job]:
        """The video's plan, import or finalize jobs that wait or run in the control queue."""
        if self._by_video is None:
            self._by_video = self._scan()
        return [j for j in self._by_video.get(video_id, []) if j.func_name in functions]

    def _scan(self) -> dict[str, list[Job]]:
        """Read the control queue once per pass, and only if some video needs it."""
        queue = self.control
        ids = list(queue.get_job_ids())
        for registry in (StartedJobRegistry, DeferredJobRegistry, ScheduledJobRegistry):
            # No cleanup: that would run failure callbacks (jobs' code) in this process.
            ids += registry(queue=queue).get_job_ids(cleanup=False)
        by_video: dict[str, list[Job]] = defaultdict(list)
        unique = list(dict.fromkeys(ids))
        for job in Job.fetch_many(unique, connection=self.redis, serializer=JSONSerializer):
            if job is None or job.get_status(refresh=False) in ENDED:
                continue
            try:
                function, args = job.func_name, job.args
            except DeserializationError:
                continue
            if args and (function in PLAN_JOBS or function == FINALIZE_JOB):
                by_video[str(args[0])].append(job)
        return by_video


class Reconciler:
    """Runs reconcile() once at start-up, then every `every` seconds in a daemon thread.

    Start it in the worker's main process before it begins working: RQ forks a work horse
    per job, and a fork copies only the forking thread, so no horse ever runs it.
    """

    def __init__(self, *, grace: float = GRACE_SECONDS) -> None:
        self.grace = grace
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, ctx: Context, every: float) -> None:
        self.run_once(ctx)
        self.thread = threading.Thread(
            target=self._loop, args=(ctx, every), name="reconcile", daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()

    def run_once(self, ctx: Context) -> ReconcileReport | None:
        """One pass. An unreachable database or Redis is logged; the next pass tries again."""
        try:
            return reconcile(ctx, grace=self.grace)
        except (RedisError, SQLAlchemyError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.warning("reconcile pass failed, the next one tries again: %s", reason)
        except Exception:  # the thread's boundary: a bug must not end the periodic passes
            log.exception("reconcile pass failed")
        return None

    def _loop(self, ctx: Context, every: float) -> None:
        # The start-up pass left videos changed within the grace period; look again when
        # that has passed, so a worker restarted after losing Redis recovers in about `grace`.
        wait = min(every, self.grace) if self.grace > 0 else every
        while not self.stopped.wait(wait):
            self.run_once(ctx)
            wait = every


def start_reconciler(settings: Settings) -> Reconciler | None:
    """For `transcoder worker`: reconcile now and every settings.reconcile_seconds (0: off)."""
    if settings.embedded or not settings.reconcile_seconds:
        return None
    reconciler = Reconciler(grace=settings.reconcile_grace_seconds)
    reconciler.start(_own_context(settings), every=settings.reconcile_seconds)
    return reconciler


def _own_context(settings: Settings) -> Context:
    """A context sharing no engine or client with the jobs of this process.

    A fork taken while the thread is inside SQLAlchemy or redis-py then leaves no lock held
    in any object a work horse uses.
    """
    return Context(
        settings=settings,
        engine=get_engine.__wrapped__(settings.resolved_database_url),
        storage=make_storage(settings),
        dispatcher=make_dispatcher(settings),
    )
