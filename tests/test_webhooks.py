"""Webhook delivery: signed bodies, retries on a real RQ worker, and the SSRF guard on targets.

Receivers are http.server instances on 127.0.0.1 started by the tests; in this process,
socket.create_connection refuses anything that is not loopback, so a guard that let a
request through too early would fail the test rather than send a packet elsewhere.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path

import pytest
from pydantic import SecretStr
from redis import Redis
from rq import Queue
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from transcoder import webhooks
from transcoder.db import records
from transcoder.db.engine import session_scope
from transcoder.db.models import DeliveryStatus, Rendition, TaskStatus, WebhookDelivery
from transcoder.queue.context import Context, build_context, install
from transcoder.settings import Settings
from transcoder.webhooks import signature_header, verify_signature

SECRET = "test-webhook-secret"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A webhook receiver on 127.0.0.1 that records requests and answers scripted statuses."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.requests: list[Received] = []
        self.gates: dict[int, threading.Event] = {}  # request number -> event to wait for
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def hold(self, number: int) -> threading.Event:
        """Make request `number` (1-based) wait until the returned event is set."""
        return self.gates.setdefault(number, threading.Event())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                gate = receiver.gates.get(len(receiver.requests))
                if gate is not None:
                    gate.wait(30)
                code = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for gate in self.gates.values():
            gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Connections this process makes through socket.create_connection (httpx's way)."""
    made: list[tuple[str, int]] = []
    real = socket.create_connection

    def create_connection(address, *args, **kwargs):
        if not ip_address(address[0]).is_loopback:
            raise AssertionError(f"a test tried to connect to {address[0]}")
        made.append((address[0], address[1]))
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return made


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def embedded(tmp_path: Path, **fields) -> Context:
    """An in-process farm (SQLite, no Redis) with webhook settings for a local receiver."""
    values = {
        "webhook_secret": SecretStr(SECRET),
        "allow_private_urls": True,
        "webhook_backoff": "0",
        "webhook_retries": 2,
    } | fields
    settings = Settings(data_dir=tmp_path / "data", redis_url="", database_url="", **values)
    return install(build_context(settings))


def new_video(ctx: Context, callback_url: str | None = None) -> str:
    with session_scope(ctx.engine) as session:
        video = records.create_video(session, source_name="clip.mp4", profile="web")
        video.callback_url = callback_url
        return video.id


def delivery(ctx: Context, delivery_id: str) -> WebhookDelivery:
    with session_scope(ctx.engine) as session:
        return records.get_webhook_delivery(session, delivery_id)


def wait_for(ctx: Context, delivery_id: str, done, timeout: float = 30) -> WebhookDelivery:
    """Poll a delivery until done(row) holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = delivery(ctx, delivery_id)
        if done(row):
            return row
        time.sleep(0.05)
    raise AssertionError(f"delivery {delivery_id} is still {row.status}, {row.attempts} attempts")


def final(row: WebhookDelivery) -> bool:
    return row.status != DeliveryStatus.PENDING


# -- signatures ----------------------------------------------------------------------------


def test_delivery_is_signed_over_the_exact_body_it_sends(tmp_path, receiver):
    ctx = embedded(tmp_path)
    video_id = new_video(ctx, receiver.url)

    (delivery_id,) = webhooks.emit(ctx, video_id, webhooks.VIDEO_SUCCEEDED)
    row = wait_for(ctx, delivery_id, final)

    assert row.status == DeliveryStatus.DELIVERED
    assert (row.attempts, row.last_status_code, row.last_error) == (1, 200, None)
    assert row.delivered_at is not None
    (request,) = receiver.requests
    headers = request.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Transcoder-Event"] == "video.succeeded"
    assert headers["X-Transcoder-Delivery"] == delivery_id
    assert verify_signature(SECRET, headers["X-Transcoder-Signature"], request.body)
    assert not verify_signature(SECRET, headers["X-Transcoder-Signature"], request.body + b" ")
    tampered = request.body.replace(b'"clip.mp4"', b'"evil.mp4"')
    assert tampered != request.body
    assert not verify_signature(SECRET, headers["X-Transcoder-Signature"], tampered)
    assert not verify_signature("another-secret", headers["X-Transcoder-Signature"], request.body)
    body = json.loads(request.body)
    assert body["id"] == delivery_id
    assert body["event"] == "video.succeeded"
    assert body["created_at"]
    assert body["video"]["id"] == video_id
    assert body["video"]["source_name"] == "clip.mp4"
    assert "rendition" not in body


def test_signatures_expire_and_malformed_headers_fail():
    body = b'{"id":"x"}'
    old = signature_header(SECRET, body, timestamp=int(time.time()) - 1000)

    assert not verify_signature(SECRET, old, body)
    assert verify_signature(SECRET, old, body, tolerance=2000)
    assert verify_signature(SECRET, signature_header(SECRET, body), body)
    now = int(time.time())
    for header in ["", "t=abc,v1=00", "v1=00", f"t={now}", "garbage", f"t={now},v1=é"]:
        assert not verify_signature(SECRET, header, body)


def test_without_a_secret_deliveries_are_unsigned_with_one_warning(
    tmp_path, receiver, caplog, monkeypatch
):
    monkeypatch.setattr(webhooks, "_warned_unsigned", threading.Event())
    caplog.set_level(logging.INFO, logger="transcoder.webhooks")
    ctx = embedded(tmp_path, webhook_secret=SecretStr(""))
    video_id = new_video(ctx, receiver.url)

    for event in (webhooks.VIDEO_SUCCEEDED, webhooks.VIDEO_FAILED):
        (delivery_id,) = webhooks.emit(ctx, video_id, event)
        assert wait_for(ctx, delivery_id, final).status == DeliveryStatus.DELIVERED

    assert len(receiver.requests) == 2
    assert all("X-Transcoder-Signature" not in r.headers for r in receiver.requests)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unsigned" in warnings[0].getMessage()


# -- events and targets --------------------------------------------------------------------


def test_rendition_ready_carries_the_rendition_with_its_download_link(tmp_path, receiver):
    ctx = embedded(tmp_path)
    video_id = new_video(ctx, receiver.url)
    with session_scope(ctx.engine) as session:
        rendition = Rendition(
            video_id=video_id,
            name="240p-h264",
            rung="240p",
            video_codec="h264",
            container="mp4",
            width=426,
            height=240,
            bitrate_kbps=400,
            plan={},
            status=TaskStatus.SUCCEEDED,
            storage_key=f"videos/{video_id}/240p-h264.mp4",
            size_bytes=1234,
        )
        session.add(rendition)
        session.flush()
        rendition_id = rendition.id

    (delivery_id,) = webhooks.emit(ctx, video_id, webhooks.RENDITION_READY, rendition_id)
    wait_for(ctx, delivery_id, final)

    body = json.loads(receiver.requests[0].body)
    assert body["event"] == "rendition.ready"
    assert body["rendition"]["id"] == rendition_id
    assert body["rendition"]["name"] == "240p-h264"
    assert body["rendition"]["url"].startswith(ctx.settings.public_url)
    assert [r["id"] for r in body["video"]["renditions"]] == [rendition_id]


def test_the_global_webhook_url_receives_events_too(tmp_path, receiver):
    with Receiver() as everything:
        ctx = embedded(tmp_path, webhook_url=everything.url)
        video_id = new_video(ctx, receiver.url)

        ids = webhooks.emit(ctx, video_id, webhooks.VIDEO_FAILED)
        rows = [wait_for(ctx, i, final) for i in ids]

        assert sorted(r.url for r in rows) == sorted([receiver.url, everything.url])
        assert all(r.status == DeliveryStatus.DELIVERED for r in rows)
        assert len(receiver.requests) == len(everything.requests) == 1
        assert everything.requests[0].headers["X-Transcoder-Event"] == "video.failed"


def test_a_url_that_is_both_callback_and_global_gets_one_delivery(tmp_path, receiver):
    ctx = embedded(tmp_path, webhook_url=receiver.url)
    video_id = new_video(ctx, receiver.url)

    ids = webhooks.emit(ctx, video_id, webhooks.VIDEO_SUCCEEDED)
    wait_for(ctx, ids[0], final)

    assert len(ids) == 1 and len(receiver.requests) == 1


def test_no_target_means_no_delivery(tmp_path):
    ctx = embedded(tmp_path)
    video_id = new_video(ctx)

    assert webhooks.emit(ctx, video_id, webhooks.VIDEO_SUCCEEDED) == []
    with session_scope(ctx.engine) as session:
        assert records.webhook_deliveries_of(session, video_id) == []


def test_unknown_events_are_a_programming_error(tmp_path):
    ctx = embedded(tmp_path)
    with pytest.raises(ValueError, match="unknown webhook event"):
        webhooks.emit(ctx, new_video(ctx), "video.exploded")


# -- the SSRF guard and retries, in process ------------------------------------------------


def test_a_loopback_callback_is_refused_when_private_urls_are_not_allowed(
    tmp_path, receiver, loopback_only
):
    ctx = embedded(tmp_path, allow_private_urls=False)
    video_id = new_video(ctx, receiver.url)

    (delivery_id,) = webhooks.emit(ctx, video_id, webhooks.VIDEO_SUCCEEDED)
    row = wait_for(ctx, delivery_id, final)

    assert row.status == DeliveryStatus.FAILED
    assert row.attempts == 1  # refused once, never retried
    assert "resolves to 127.0.0.1, which is not a public address" in row.last_error
    assert receiver.requests == []
    assert loopback_only == []


def test_inline_attempts_stop_failed_when_retries_run_out(tmp_path):
    with Receiver(500, 502, 503, 200) as flaky:
        ctx = embedded(tmp_path, webhook_retries=2)
        video_id = new_video(ctx, flaky.url)

        (delivery_id,) = webhooks.emit(ctx, video_id, webhooks.VIDEO_SUCCEEDED)
        row = wait_for(ctx, delivery_id, final)

        assert row.status == DeliveryStatus.FAILED
        assert (row.attempts, row.last_status_code) == (3, 503)
        assert row.last_error == "the receiver answered HTTP 503"
        assert len(flaky.requests) == 3
        assert webhooks.wait_inline(5)


def test_retry_intervals_follow_the_backoff_and_repeat_its_last_value():
    settings = Settings(webhook_backoff="5, 15,60", webhook_retries=5)
    assert webhooks.retry_intervals(settings) == [5, 15, 60, 60, 60]
    assert webhooks.retry_intervals(settings.model_copy(update={"webhook_retries": 2})) == [5, 15]
    assert webhooks.retry_intervals(settings.model_copy(update={"webhook_retries": 0})) == []


# -- a real RQ worker ----------------------------------------------------------------------

WORKER_ENV = {
    "TRANSCODER_ALLOW_PRIVATE_URLS": "true",
    "TRANSCODER_WEBHOOK_SECRET": SECRET,
    "TRANSCODER_WEBHOOK_BACKOFF": "1",
}


def farm(farm_settings: Settings, **fields) -> Context:
    values = {"webhook_secret": SecretStr(SECRET), "webhook_backoff": "1"} | fields
    return install(build_context(farm_settings.model_copy(update=values)))


@pytest.mark.services
def test_a_real_worker_retries_after_a_500_and_records_each_attempt(farm_settings, start_worker):
    ctx = farm(farm_settings, webhook_retries=3)
    with Receiver(500, 200) as flaky:
        second = flaky.hold(2)
        video_id = new_video(ctx, flaky.url)
        start_worker(env=WORKER_ENV)

        (delivery_id,) = webhooks.emit(ctx, video_id, webhooks.VIDEO_SUCCEEDED)
        first = wait_for(ctx, delivery_id, lambda row: row.attempts == 1)
        second.set()
        done = wait_for(ctx, delivery_id, final)

        assert first.status == DeliveryStatus.PENDING
        assert (first.last_status_code, first.last_error) == (500, "the receiver answered HTTP 500")
        assert first.next_attempt_at is not None
        assert done.status == DeliveryStatus.DELIVERED
        assert (done.attempts, done.last_status_code, done.last_error) == (2, 200, None)
        assert len(flaky.requests) == 2
        assert flaky.requests[0].body == flaky.requests[1].body
        for request in flaky.requests:
            assert request.headers["X-Transcoder-Delivery"] == delivery_id
            assert verify_signature(SECRET, request.headers["X-Transcoder-Signature"], request.body)


@pytest.mark.services
def test_a_real_worker_marks_the_delivery_failed_when_retries_run_out(farm_settings, start_worker):
    ctx = farm(farm_settings, webhook_retries=1)
    with Receiver(503, 503, 200) as down:
        video_id = new_video(ctx, down.url)
        start_worker(env=WORKER_ENV)

        (delivery_id,) = webhooks.emit(ctx, video_id, webhooks.VIDEO_FAILED)
        row = wait_for(ctx, delivery_id, final)

        assert row.status == DeliveryStatus.FAILED
        assert (row.attempts, row.last_status_code) == (2, 503)
        assert len(down.requests) == 2


@pytest.mark.services
def test_a_real_worker_refuses_a_loopback_callback_without_retrying(
    farm_settings, start_worker, receiver
):
    ctx = farm(farm_settings, webhook_retries=3)
    video_id = new_video(ctx, receiver.url)
    start_worker(env={k: v for k, v in WORKER_ENV.items() if "PRIVATE" not in k})

    (delivery_id,) = webhooks.emit(ctx, video_id, webhooks.VIDEO_SUCCEEDED)
    row = wait_for(ctx, delivery_id, final)

    assert row.status == DeliveryStatus.FAILED
    assert row.attempts == 1
    assert "which is not a public address" in row.last_error
    assert receiver.requests == []
    redis = Redis.from_url(farm_settings.redis_url)
    control = Queue(f"{farm_settings.queue_prefix}-control", connection=redis)
    assert ScheduledJobRegistry(queue=control, serializer=JSONSerializer).count == 0
    redis.close()
