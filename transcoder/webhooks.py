"""Signed webhook delivery: a row per event and target, one POST per attempt, retried with backoff.

The body is the video's public view (the same JSON the API returns), built once when the
event happens. Each request carries `X-Transcoder-Signature: t=<unix seconds>,v1=<hex>`, an
HMAC-SHA256 with TRANSCODER_WEBHOOK_SECRET of `f"{t}."` followed by the raw body; receivers
check it with verify_signature. Targets pass the same SSRF guard as URL imports, and a URL
the guard refuses is never retried.

With Redis, each delivery is an RQ job on the control queue and RQ schedules the retries;
without it, a daemon thread makes the attempts on the same schedule.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from datetime import timedelta
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Retry, get_current_job
from rq.queue import Queue
from rq.serializers import JSONSerializer
from sqlmodel import Session

from transcoder import __version__, links
from transcoder.db import records
from transcoder.db.engine import session_scope
from transcoder.db.models import DeliveryStatus, Video, WebhookDelivery, utcnow
from transcoder.errors import FetchFailed, NotFound, URLRefused
from transcoder.ingest import check_public_url, parse_url, pinned_request, safe_url
from transcoder.queue.context import Context, current
from transcoder.settings import Settings
from transcoder.views import video_view

log = logging.getLogger("transcoder.webhooks")

RENDITION_READY = "rendition.ready"
VIDEO_SUCCEEDED = "video.succeeded"
VIDEO_FAILED = "video.failed"
EVENTS = frozenset({RENDITION_READY, VIDEO_SUCCEEDED, VIDEO_FAILED})

SIGNATURE_HEADER = "X-Transcoder-Signature"
EVENT_HEADER = "X-Transcoder-Event"
DELIVERY_HEADER = "X-Transcoder-Delivery"
POST_TIMEOUT = 10.0
JOB_TIMEOUT = 60  # one attempt: resolving, connecting and the POST's own timeouts
ERROR_CHARS = 500

_warned_unsigned = threading.Event()
_inline: set[threading.Thread] = set()  # deliveries running in this process (no Redis)
_inline_lock = threading.Lock()


def emit(ctx: Context, video_id: str, event: str, rendition_id: str | None = None) -> list[str]:
    """Record and dispatch a delivery of `event` to each of the video's targets; their ids."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}; expected one of {sorted(EVENTS)}")
    with session_scope(ctx.engine) as session:
        video = records.get_video(session, video_id)
        targets = webhook_targets(video.callback_url, ctx.settings.webhook_url)
        if not targets:
            return []
        data = event_data(ctx, session, video, event, rendition_id)
        deliveries = [
            records.create_webhook_delivery(
                session, video_id=video_id, event=event, url=url, data=data
            )
            for url in targets
        ]
        ids = [d.id for d in deliveries]
    for delivery_id in ids:
        _dispatch(ctx, delivery_id, video_id, event)
    return ids


def webhook_targets(*urls: str | None) -> list[str]:
    """The non-empty URLs, each once, in order."""
    return list(dict.fromkeys(u.strip() for u in urls if u and u.strip()))


def event_data(
    ctx: Context, session: Session, video: Video, event: str, rendition_id: str | None
) -> dict[str, Any]:
    """The event's content: the video's public view, and the rendition for rendition.ready."""
    settings, storage = ctx.settings, ctx.storage
    view = video_view(session, video, lambda key: links.download_url(settings, storage, key))
    data: dict[str, Any] = {"video": view.model_dump(mode="json")}
    if event == RENDITION_READY:
        rendition = next((r for r in view.renditions if r.id == rendition_id), None)
        if rendition is None:
            raise NotFound(f"video {video.id} has no rendition with id {rendition_id}")
        data["rendition"] = rendition.model_dump(mode="json")
    return data


def deliver_webhook(delivery_id: str) -> None:
    """RQ job: one attempt. Raises FetchFailed for RQ to retry while retries remain."""
    job = get_current_job()
    retry_in = job.get_retry_interval() if job is not None and job.retries_left else None
    attempt(current(), delivery_id, retry_in=retry_in)


def attempt(ctx: Context, delivery_id: str, *, retry_in: int | None) -> None:
    """POST a delivery once and record the outcome.

    `retry_in` is the delay before the next attempt, or None when this one is the last. A
    failure that will be retried is raised again as FetchFailed.
    """
    with session_scope(ctx.engine) as session:
        try:
            delivery = records.get_webhook_delivery(session, delivery_id)
        except NotFound:
            log.error(
                "webhook delivery %s is not in this worker's database; do the API and the "
                "workers share DATABASE_URL?",
                delivery_id,
            )
            return
        if delivery.status != DeliveryStatus.PENDING:
            log.info("webhook delivery %s is %s already; skipped", delivery_id, delivery.status)
            return
        url, video_id, event = delivery.url, delivery.video_id, delivery.event
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        number = delivery.attempts + 1
    where = f"video {video_id} {event} delivery {delivery_id} to {safe_url(url)}"

    code: int | None = None
    try:
        code = post(ctx.settings, url, body, event=event, delivery_id=delivery_id)
        error = None if 200 <= code < 300 else f"the receiver answered HTTP {code}"
    except URLRefused as exc:
        _record(ctx, delivery_id, DeliveryStatus.FAILED, code=None, error=exc.reason)
        log.info("%s not sent, and not retried: %s", where, exc.reason)
        return
    except FetchFailed as exc:
        error = exc.reason

    if error is None:
        _record(ctx, delivery_id, DeliveryStatus.DELIVERED, code=code, error=None)
        log.info("%s delivered: HTTP %s on attempt %d", where, code, number)
        return
    if retry_in is None:
        _record(ctx, delivery_id, DeliveryStatus.FAILED, code=code, error=error)
        log.info("%s failed on attempt %d, the last: %s", where, number, error)
        return
    _record(ctx, delivery_id, DeliveryStatus.PENDING, code=code, error=error, retry_in=retry_in)
    log.info("%s failed on attempt %d, retry in %d s: %s", where, number, retry_in, error)
    raise FetchFailed(error)


def post(settings: Settings, url: str, body: bytes, *, event: str, delivery_id: str) -> int:
    """POST a signed body to a vetted address of the URL's host; the response's status code."""
    addresses = check_public_url(url, allow_private=settings.allow_private_urls)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"transcoder/{__version__}",
        EVENT_HEADER: event,
        DELIVERY_HEADER: delivery_id,
    }
    secret = settings.webhook_secret.get_secret_value()
    if secret:
        headers[SIGNATURE_HEADER] = signature_header(secret, body)
    elif not _warned_unsigned.is_set():
        _warned_unsigned.set()
        log.warning("TRANSCODER_WEBHOOK_SECRET is not set: webhooks are sent unsigned")
    with pinned_request(
        "POST", parse_url(url), addresses, headers=headers, content=body, timeout=POST_TIMEOUT
    ) as response:
        return response.status_code


def signature_header(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The X-Transcoder-Signature value for a body, signed now (or at `timestamp`)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_digest(secret, t, body)}"


def verify_signature(
    secret: str, header: str, body: bytes, tolerance: int = 300, *, now: float | None = None
) -> bool:
    """True when `header` signs exactly `body` with `secret`, at most `tolerance` s from now."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, []).append(value)
    try:
        t = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = _digest(secret, t, body)
    return any(v.isascii() and hmac.compare_digest(expected, v) for v in fields.get("v1", []))


def retry_intervals(settings: Settings) -> list[int]:
    """Seconds before each retry, one per retry: the backoff list, its last value repeated."""
    schedule = [int(s) for s in settings.webhook_backoff.split(",")]
    return [schedule[min(i, len(schedule) - 1)] for i in range(settings.webhook_retries)]


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _dispatch(ctx: Context, delivery_id: str, video_id: str, event: str) -> None:
    """Start a delivery: an RQ job with retries, or a thread when there is no Redis."""
    if ctx.settings.embedded:
        thread = threading.Thread(
            target=_deliver_inline,
            args=(ctx, delivery_id),
            name=f"webhook-{delivery_id[:8]}",
            daemon=True,
        )
        with _inline_lock:
            _inline.add(thread)
        thread.start()
        return
    intervals = retry_intervals(ctx.settings)
    try:
        with Redis.from_url(ctx.settings.redis_url) as redis:
            queue = Queue(
                f"{ctx.settings.queue_prefix}-control", connection=redis, serializer=JSONSerializer
            )
            queue.enqueue_call(
                f"{__name__}.deliver_webhook",
                args=(delivery_id,),
                timeout=JOB_TIMEOUT,
                retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
                description=f"webhook {event} of video {video_id}",
            )
    except RedisError as exc:
        # The caller's job (a video ending) must not fail because its webhook could not queue.
        reason = f"could not queue the delivery: {exc}"
        _record(ctx, delivery_id, DeliveryStatus.FAILED, code=None, error=reason, attempted=False)
        log.error("video %s %s delivery %s: %s", video_id, event, delivery_id, reason)


def _deliver_inline(ctx: Context, delivery_id: str) -> None:
    """Make every attempt of one delivery in this thread, sleeping between them as RQ would."""
    intervals = retry_intervals(ctx.settings)
    try:
        for index in range(len(intervals) + 1):
            retry_in = intervals[index] if index < len(intervals) else None
            try:
                attempt(ctx, delivery_id, retry_in=retry_in)
                return
            except FetchFailed:
                time.sleep(retry_in or 0)
    except Exception:  # the thread's boundary, as an RQ worker's would be
        log.exception("webhook delivery %s failed unexpectedly", delivery_id)
    finally:
        with _inline_lock:
            _inline.discard(threading.current_thread())


def wait_inline(timeout: float) -> bool:
    """Wait up to `timeout` s for this process's in-process deliveries; True if none is left.

    For the CLI without Redis, whose daemon delivery threads would die with the process.
    """
    deadline = time.monotonic() + timeout
    with _inline_lock:
        threads = list(_inline)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    with _inline_lock:
        return not _inline


def _record(
    ctx: Context,
    delivery_id: str,
    status: DeliveryStatus,
    *,
    code: int | None,
    error: str | None,
    retry_in: int | None = None,
    attempted: bool = True,
) -> None:
    """Write the outcome of an attempt on the delivery's row."""
    with session_scope(ctx.engine) as session:
        delivery: WebhookDelivery = records.get_webhook_delivery(session, delivery_id, lock=True)
        now = utcnow()
        delivery.status = status
        delivery.attempts += 1 if attempted else 0
        delivery.last_status_code = code
        delivery.last_error = error[:ERROR_CHARS] if error else None
        delivery.delivered_at = now if status == DeliveryStatus.DELIVERED else None
        delivery.next_attempt_at = (
            now + timedelta(seconds=retry_in) if retry_in is not None else None
        )
