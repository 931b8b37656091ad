"""/readyz names the dependency that is down."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
from fastapi.testclient import TestClient

from transcoder.api import create_app

pytestmark = pytest.mark.services


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ready_when_everything_answers(client):
    body = client.get("/readyz").json()

    assert body == {
        "status": "ready",
        "failed": [],
        "checks": {"database": "ok", "redis": "ok", "storage": "ok", "ffmpeg": "ok"},
    }


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_readyz_names_redis_when_it_is_stopped(api_settings, tmp_path):
    port = free_port()
    redis = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        own = api_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0"})
        with TestClient(create_app(own)) as c:
            deadline = time.monotonic() + 10
            while c.get("/readyz").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert c.get("/readyz").status_code == 200

            redis.terminate()
            redis.wait(10)
            response = c.get("/readyz")
    finally:
        if redis.poll() is None:
            redis.kill()

    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["redis"]
    assert body["checks"]["redis"].startswith("error: ")
    assert body["checks"]["database"] == "ok"
