"""Object-store failures during a transcode, injected by a real HTTP proxy in front of the
S3 server: transient ones are retried, permanent ones end the rendition with the reason."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from transcoder.db import records
from transcoder.db.engine import session_scope
from transcoder.db.models import TaskStatus, VideoStatus
from transcoder.queue.context import build_context, install
from transcoder.submit import submit_file


class FaultyProxy:
    """Forwards to the S3 server, but answers each rendition's upload with an error N times."""

    def __init__(self, upstream: str, status: int, code: str, times: int) -> None:
        self.times = times
        self.failures: dict[str, int] = {}
        self.lock = threading.Lock()
        target = urlsplit(upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                key = self.path.split("?")[0]
                if self.command == "PUT" and key.endswith((".mp4", ".webm")) and proxy.fail(key):
                    error = f"<Error><Code>{code}</Code><Message>injected</Message></Error>"
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(error)))
                    self.end_headers()
                    self.wfile.write(error.encode())
                    return
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                conn.request(self.command, self.path, body=body, headers=dict(self.headers))
                reply = conn.getresponse()
                data = reply.read()
                self.send_response(reply.status)
                for name, value in reply.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def fail(self, key: str) -> bool:
        with self.lock:
            if self.failures.get(key, 0) >= self.times:
                return False
            self.failures[key] = self.failures.get(key, 0) + 1
            return True

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def faulty(s3_endpoint) -> Iterator:
    proxies: list[FaultyProxy] = []

    def make(status: int, code: str, times: int) -> FaultyProxy:
        proxies.append(FaultyProxy(s3_endpoint, status, code, times))
        return proxies[-1]

    yield make
    for proxy in proxies:
        proxy.close()


def run(settings, clip):
    ctx = install(build_context(settings))
    video_id = submit_file(ctx, clip)
    with session_scope(ctx.engine) as session:
        return records.get_video(session, video_id), list(records.renditions_of(session, video_id))


def test_transient_upload_failures_are_retried_and_the_video_succeeds(
    s3_settings, faulty, small_clip
):
    # Six 503s per upload, one more than botocore's own five attempts: the farm's retry
    # (a new encode and upload) has to take over.
    proxy = faulty(503, "SlowDown", times=6)
    settings = s3_settings.model_copy(update={"s3_endpoint_url": proxy.url, "encode_retries": 1})

    video, renditions = run(settings, small_clip)

    assert video.status == VideoStatus.SUCCEEDED, video.error
    assert proxy.failed == 12
    assert [r.attempts for r in renditions] == [2, 2]


def test_permanent_upload_failure_ends_the_rendition_with_the_reason(
    s3_settings, faulty, small_clip
):
    proxy = faulty(403, "AccessDenied", times=100)
    settings = s3_settings.model_copy(update={"s3_endpoint_url": proxy.url, "encode_retries": 2})

    video, renditions = run(settings, small_clip)

    assert video.status == VideoStatus.ERROR
    assert all(r.status == TaskStatus.ERROR and r.attempts == 1 for r in renditions)
    assert all("AccessDenied" in r.error for r in renditions)
    assert proxy.failed == 2  # one attempt each, no retries
