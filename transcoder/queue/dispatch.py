"""Getting jobs run: on RQ when REDIS_URL is set, otherwise in this process.

Both dispatchers run the same job functions from transcoder.queue.jobs, with the same
order: plan, then every rendition and the preview side by side, then finalize once all
of them have ended, whether they succeeded or not.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from redis import Redis
from rq import Callback, Queue, Retry
from rq.command import send_stop_job_command
from rq.exceptions import NoSuchJobError
from rq.job import Dependency, Job, JobStatus
from rq.serializers import JSONSerializer

from transcoder.encode.runner import encode_timeout
from transcoder.settings import Settings

log = logging.getLogger("transcoder.queue")

JOBS = "transcoder.queue.jobs"
PLAN_TIMEOUT = 600
PREVIEW_TIMEOUT = 300
FINALIZE_TIMEOUT = 120


class Dispatcher(Protocol):
    def start(self, video_id: str, *, import_first: bool = False) -> str | None:
        """Begin work on a video: its plan job (after importing its URL); return the job id."""

    def fan_out(
        self, video_id: str, rendition_ids: list[str], preview_id: str | None, duration: float
    ) -> dict[str, str]:
        """Run the renditions and the preview, then finalize; return job ids by record id."""

    def cancel(self, job_ids: list[str]) -> int:
        """Cancel queued jobs and stop running ones (their ffmpeg dies with them)."""

    def finalize(self, video_id: str) -> str | None:
        """Settle a video whose tasks have all ended (again); return the job id."""


def make_dispatcher(settings: Settings) -> Dispatcher:
    if settings.embedded:
        return InlineDispatcher(settings)
    return RQDispatcher(settings)


def queue_names(settings: Settings) -> list[str]:
    """Queues in priority order: short control jobs first, then encodes."""
    return [f"{settings.queue_prefix}-control", f"{settings.queue_prefix}-encode"]


class RQDispatcher:
    """Enqueue jobs (ids only, JSON-serialised) for `transcoder worker` processes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis = Redis.from_url(settings.redis_url)
        control, encode = queue_names(settings)
        self.control = Queue(control, connection=self.redis, serializer=JSONSerializer)
        self.encode = Queue(encode, connection=self.redis, serializer=JSONSerializer)

    def start(self, video_id: str, *, import_first: bool = False) -> str | None:
        s = self.settings
        job = self.control.enqueue_call(
            f"{JOBS}.import_video" if import_first else f"{JOBS}.plan_video",
            args=(video_id,),
            timeout=PLAN_TIMEOUT + (int(s.url_import_timeout) * 4 if import_first else 0),
            retry=Retry(max=2, interval=[10, 60]) if import_first else None,
            on_failure=Callback(f"{JOBS}.on_plan_failure"),
            description=f"{'import and plan' if import_first else 'plan'} video {video_id}",
        )
        return str(job.id)

    def finalize(self, video_id: str) -> str | None:
        job = self.control.enqueue_call(
            f"{JOBS}.finalize_video",
            args=(video_id,),
            timeout=FINALIZE_TIMEOUT,
            description=f"finalize video {video_id}",
        )
        return str(job.id)

    def cancel(self, job_ids: list[str]) -> int:
        stopped = 0
        for job_id in job_ids:
            try:
                job = Job.fetch(job_id, connection=self.redis, serializer=JSONSerializer)
            except NoSuchJobError:
                continue
            status = job.get_status(refresh=False)
            if status == JobStatus.STARTED:
                send_stop_job_command(self.redis, job_id, serializer=JSONSerializer)
                stopped += 1
            elif status not in (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELED):
                job.cancel()
                stopped += 1
        return stopped

    def fan_out(
        self, video_id: str, rendition_ids: list[str], preview_id: str | None, duration: float
    ) -> dict[str, str]:
        s = self.settings
        limit = encode_timeout(duration, base=s.encode_timeout_base, factor=s.encode_timeout_factor)
        # A retried encode goes to the front of the queue at once (its first retry is usually
        # a lost worker's job, which must not wait behind the backlog), later ones after a pause.
        retry = (
            Retry(
                max=s.encode_retries,
                interval=[0] + [30] * (s.encode_retries - 1),  # RQ reads one per retry
                enqueue_at_front=True,
            )
            if s.encode_retries
            else None
        )
        failed = Callback(f"{JOBS}.on_task_failure")
        jobs = {}
        for rendition_id in rendition_ids:
            jobs[rendition_id] = self.encode.enqueue_call(
                f"{JOBS}.encode_rendition",
                args=(rendition_id,),
                timeout=int(limit) + 60,
                retry=retry,
                on_failure=failed,
                description=f"encode rendition {rendition_id} of video {video_id}",
            )
        if preview_id is not None:
            jobs[preview_id] = self.control.enqueue_call(
                f"{JOBS}.make_preview",
                args=(preview_id,),
                timeout=PREVIEW_TIMEOUT,
                retry=retry,
                on_failure=failed,
                description=f"preview of video {video_id}",
            )
        # Finalize waits for every task, failed ones included, so a video always ends.
        self.control.enqueue_call(
            f"{JOBS}.finalize_video",
            args=(video_id,),
            timeout=FINALIZE_TIMEOUT,
            depends_on=Dependency(jobs=list(jobs.values()), allow_failure=True),
            description=f"finalize video {video_id}",
        )
        return {record_id: job.id for record_id, job in jobs.items()}


class InlineDispatcher:
    """Run the jobs in this process; renditions share a small thread pool."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def start(self, video_id: str, *, import_first: bool = False) -> str | None:
        from transcoder.queue import jobs

        try:
            (jobs.import_video if import_first else jobs.plan_video)(video_id)
        except Exception as exc:  # the job boundary, as in an RQ worker
            log.exception("plan of video %s failed", video_id)
            jobs.record_video_failure(video_id, exc)
        return None

    def cancel(self, job_ids: list[str]) -> int:
        """Inline jobs run in the caller; only the CLI's interrupt handling stops them."""
        return 0

    def finalize(self, video_id: str) -> str | None:
        from transcoder.queue import jobs

        jobs.finalize_video(video_id)
        return None

    def fan_out(
        self, video_id: str, rendition_ids: list[str], preview_id: str | None, duration: float
    ) -> dict[str, str]:
        from transcoder.queue import jobs

        tasks: list[tuple[Callable[[str], None], str]] = [
            (jobs.encode_rendition, rid) for rid in rendition_ids
        ]
        if preview_id is not None:
            tasks.append((jobs.make_preview, preview_id))
        with ThreadPoolExecutor(self.settings.slots(), thread_name_prefix="job") as pool:
            for future in [pool.submit(self._attempts, fn, arg) for fn, arg in tasks]:
                future.result()
        jobs.finalize_video(video_id)
        return {}

    def _attempts(self, fn, record_id: str) -> None:
        """Run one job with the same retry budget RQ would give it."""
        from transcoder.queue import jobs

        retries = self.settings.encode_retries
        while True:
            inline_retries.left = retries
            try:
                fn(record_id)
                return
            except Exception as exc:  # the job boundary: anything unhandled ends the task
                if retries > 0 and getattr(exc, "transient", False):
                    retries -= 1
                    continue
                log.exception("job %s(%s) failed", fn.__name__, record_id)
                jobs.record_task_failure(record_id, exc)
                return


inline_retries = threading.local()
