"""Fixtures for the HTTP API: the app on real PostgreSQL and Redis, a client with a key."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from transcoder.api import create_app
from transcoder.settings import Settings

KEY = "test-key-one"


@pytest.fixture
def api_settings(farm_settings: Settings) -> Settings:
    return farm_settings.model_copy(
        update={"api_keys": SecretStr(f"{KEY},test-key-two"), "public_url": "http://testserver"}
    )


@pytest.fixture
def client(api_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings), raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {KEY}"
        yield c


@pytest.fixture
def wait_video(client: TestClient) -> Callable[..., dict]:
    def wait(video_id: str, timeout: float = 180, until=("succeeded", "error")) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = client.get(f"/videos/{video_id}").json()
            if body.get("status") in until:
                return body
            time.sleep(0.5)
        raise AssertionError(f"video {video_id} still {body.get('status')} after {timeout} s")

    return wait


class Served:
    """A local HTTP server the test controls: files by path, redirects, and a request log."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}
        self.requests: list[str] = []
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                served.requests.append(self.path)
                if self.path in served.redirects:
                    self.send_response(302)
                    self.send_header("Location", served.redirects[self.path])
                    self.end_headers()
                    return
                body = served.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, path: str, file: Path) -> str:
        self.files[path] = file.read_bytes()
        return self.url(path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def served() -> Iterator[Served]:
    server = Served()
    yield server
    server.close()
