"""Prometheus metrics computed from the records and the queues when scraped.

Workers are separate processes (often separate pods), so counters live in the database,
not in this process: every API replica reports the same farm-wide numbers.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from redis import Redis
from rq import Queue
from sqlmodel import Session, col, func, select

from transcoder.db.models import Preview, Rendition, Video, WebhookDelivery
from transcoder.queue.context import Context
from transcoder.queue.dispatch import queue_names


class FarmCollector:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def collect(self):
        with Session(self.ctx.engine) as session:
            yield self._videos(session)
            yield from self._tasks(session)
            yield self._webhooks(session)
        yield self._queues()

    def _videos(self, session: Session) -> GaugeMetricFamily:
        family = GaugeMetricFamily("transcoder_videos", "Videos by status.", labels=["status"])
        rows = session.exec(select(Video.status, func.count()).group_by(Video.status)).all()
        for status, count in rows:
            family.add_metric([str(status)], count)
        return family

    def _tasks(self, session: Session):
        jobs = CounterMetricFamily(
            "transcoder_jobs",
            "Rendition and preview jobs that ended, by kind and outcome.",
            labels=["kind", "outcome"],
        )
        for kind, model in (("rendition", Rendition), ("preview", Preview)):
            rows = session.exec(select(model.status, func.count()).group_by(model.status)).all()
            for status, count in rows:
                if str(status) in ("succeeded", "error"):
                    jobs.add_metric([kind, str(status)], count)
        yield jobs

        seconds = CounterMetricFamily(
            "transcoder_encode_seconds",
            "ffmpeg wall time spent per rendition.",
            labels=["rendition"],
        )
        size = CounterMetricFamily(
            "transcoder_output_bytes", "Bytes stored per rendition.", labels=["rendition"]
        )
        totals = session.exec(
            select(
                Rendition.name,
                func.coalesce(func.sum(Rendition.encode_seconds), 0),
                func.coalesce(func.sum(Rendition.size_bytes), 0),
            ).group_by(col(Rendition.name))
        ).all()
        for name, spent, stored in totals:
            seconds.add_metric([name], float(spent or 0))
            size.add_metric([name], float(stored or 0))
        yield seconds
        yield size

    def _webhooks(self, session: Session) -> CounterMetricFamily:
        family = CounterMetricFamily(
            "transcoder_webhook_deliveries",
            "Webhook deliveries by event and status.",
            labels=["event", "status"],
        )
        rows = session.exec(
            select(WebhookDelivery.event, WebhookDelivery.status, func.count()).group_by(
                col(WebhookDelivery.event), col(WebhookDelivery.status)
            )
        ).all()
        for event, status, count in rows:
            family.add_metric([event, str(status)], count)
        return family

    def _queues(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "transcoder_queue_depth", "Jobs waiting per RQ queue.", labels=["queue"]
        )
        redis = Redis.from_url(self.ctx.settings.redis_url, socket_timeout=2)
        for name in queue_names(self.ctx.settings):
            family.add_metric([name], Queue(name, connection=redis).count)
        return family


def farm_registry(ctx: Context) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FarmCollector(ctx))
    return registry
