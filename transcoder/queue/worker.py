"""`transcoder worker`: an RQ worker tuned so that a lost worker's job is back in work quickly.

RQ's defaults suit short jobs: a job whose worker died (a killed pod) stays "started" until
its heartbeat lapses (90 s) and a live worker's maintenance pass (every 10 minutes) moves it.
Here heartbeats are short and every idle worker checks for abandoned jobs every few seconds,
so an encode whose pod was killed is retried elsewhere within about a minute.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from redis import Redis
from rq import Queue, Worker
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.utils import now

from transcoder.errors import ConfigError
from transcoder.queue.dispatch import queue_names
from transcoder.queue.reconcile import start_reconciler
from transcoder.settings import Settings

log = logging.getLogger("transcoder.worker")

# How long the worker's command listener blocks on Redis at a time. RQ uses 60 s, and with
# redis-py 8 stopping the listener waits that long, so every worker exit took up to a minute.
LISTEN_SECONDS = 1
# A running job's heartbeat is renewed every MONITOR_SECONDS and lapses HEARTBEAT_GRACE
# seconds after the last renewal: that is how long a killed worker's job looks alive.
MONITOR_SECONDS = 5
HEARTBEAT_GRACE = 15
# An idle worker wakes this often to run maintenance (moving abandoned jobs on).
WORKER_TTL = 30


class FarmWorker(Worker):
    """RQ's worker with quick abandoned-job handling and a bounded shutdown."""

    def __init__(self, *args, stop_grace: float, maintenance_seconds: int, **kwargs) -> None:
        kwargs.setdefault("job_monitoring_interval", MONITOR_SECONDS)
        kwargs.setdefault("worker_ttl", WORKER_TTL)
        kwargs["maintenance_interval"] = maintenance_seconds
        super().__init__(*args, **kwargs)
        self.stop_grace = stop_grace
        self._handed_back = False

    def subscribe(self) -> None:
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]
            sleep_time=LISTEN_SECONDS,
            daemon=True,
            exception_handler=self._pubsub_exception_handler,
        )

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        if job.timeout and job.timeout > 0:
            left = job.timeout - working_time
            return int(min(left, self.job_monitoring_interval)) + HEARTBEAT_GRACE
        return self.job_monitoring_interval + HEARTBEAT_GRACE

    def maintain_heartbeats(self, job: Job, execution) -> None:
        """Also the place to hand a job back when a shutdown has waited long enough.

        On SIGTERM the worker takes no new job and lets the current one finish; if it is
        still running after `stop_grace` seconds, the work horse (and its ffmpeg) is killed,
        which RQ treats as a failed attempt: the job goes back to the queue for another
        worker while it has retries left.
        """
        super().maintain_heartbeats(job, execution)
        asked = self._shutdown_requested_date
        if asked is None or self._handed_back or not self.horse_pid:
            return
        if now() - asked > timedelta(seconds=self.stop_grace):
            log.warning(
                "worker %s: job %s still running %.0f s after the stop request; handing it back",
                self.name,
                job.id,
                self.stop_grace,
            )
            self._handed_back = True
            self.kill_horse()


def run_worker(settings: Settings, *, burst: bool = False, name: str | None = None) -> bool:
    """Work the control and encode queues until stopped (or until empty, with burst)."""
    if settings.embedded:
        raise ConfigError("REDIS_URL is not set; a worker needs Redis (the CLI runs jobs inline)")
    connection = Redis.from_url(settings.redis_url)
    queues = [
        Queue(q, connection=connection, serializer=JSONSerializer) for q in queue_names(settings)
    ]
    worker = FarmWorker(
        queues,
        connection=connection,
        serializer=JSONSerializer,
        name=name,
        stop_grace=settings.stop_grace_seconds,
        maintenance_seconds=settings.maintenance_seconds,
    )
    log.info(
        "worker %s on %s, %d ffmpeg threads per job",
        worker.name,
        ", ".join(q.name for q in queues),
        settings.threads_per_job(),
    )
    start_reconciler(settings)
    return worker.work(burst=burst, with_scheduler=True)
