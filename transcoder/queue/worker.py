"""`transcoder worker`: a real RQ worker on the farm's queues."""

from __future__ import annotations

import logging

from redis import Redis
from rq import Queue, Worker
from rq.serializers import JSONSerializer

from transcoder.errors import ConfigError
from transcoder.queue.dispatch import queue_names
from transcoder.settings import Settings

log = logging.getLogger("transcoder.worker")

# How long the worker's command listener blocks on Redis at a time. RQ uses 60 s, and with
# redis-py 8 stopping the listener waits that long, so every worker exit took up to a minute.
LISTEN_SECONDS = 1


class FarmWorker(Worker):
    """RQ's worker with a command listener that stops within a second."""

    def subscribe(self) -> None:
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]
            sleep_time=LISTEN_SECONDS,
            daemon=True,
            exception_handler=self._pubsub_exception_handler,
        )


def run_worker(settings: Settings, *, burst: bool = False, name: str | None = None) -> bool:
    """Work the control and encode queues until stopped (or until empty, with burst)."""
    if settings.embedded:
        raise ConfigError("REDIS_URL is not set; a worker needs Redis (the CLI runs jobs inline)")
    connection = Redis.from_url(settings.redis_url)
    queues = [
        Queue(q, connection=connection, serializer=JSONSerializer) for q in queue_names(settings)
    ]
    worker = FarmWorker(queues, connection=connection, serializer=JSONSerializer, name=name)
    log.info(
        "worker %s on %s, %d ffmpeg threads per job",
        worker.name,
        ", ".join(q.name for q in queues),
        settings.threads_per_job(),
    )
    return worker.work(burst=burst, with_scheduler=True)
