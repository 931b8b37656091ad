"""Submitting and following videos over HTTP, with real workers, PostgreSQL and Redis."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from transcoder.db import records
from transcoder.db.engine import session_scope

pytestmark = pytest.mark.services


def upload(client, path: Path, **fields):
    with path.open("rb") as f:
        return client.post("/videos", files={"file": (path.name, f, "video/mp4")}, data=fields)


def test_upload_ends_succeeded_with_downloadable_renditions(
    client, start_worker, sample, wait_video, ffprobe_streams, tmp_path
):
    start_worker()

    response = upload(client, sample("bikes.mp4"))

    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "queued" and accepted["source_name"] == "bikes.mp4"
    video = wait_video(accepted["id"])
    assert video["status"] == "succeeded", video["error"]
    assert video["progress"] == 1.0 and video["eta_seconds"] is None
    assert video["media"]["width"] == 640 and video["media"]["audio_tracks"] == 0
    assert sorted(r["name"] for r in video["renditions"]) == ["240p-h264", "240p-vp8"]
    for rendition in video["renditions"]:
        link = rendition["url"].removeprefix("http://testserver")
        got = client.get(link, headers={"Authorization": ""})  # signed links need no key
        assert got.status_code == 200
        out = tmp_path / rendition["name"]
        out.write_bytes(got.content)
        stream = ffprobe_streams(out)["streams"][0]
        assert (stream["codec_name"], stream["width"], stream["height"]) == (
            rendition["video_codec"],
            564,
            240,
        )
    kinds = [img["kind"] for img in video["preview"]["images"]]
    assert kinds == ["poster", "thumb-480", "thumb-160"]


def test_tampered_download_link_is_refused(client, start_worker, small_clip, wait_video):
    start_worker()
    clip = small_clip
    video = wait_video(upload(client, clip).json()["id"])
    link = video["renditions"][0]["url"].removeprefix("http://testserver")

    forged = link.replace("180p-h264.mp4", "source").replace("180p-vp8.webm", "source")

    assert client.get(forged).status_code == 403
    assert client.get(link.replace("sig=", "sig=0")).status_code == 403


def test_upload_over_the_limit_is_refused_with_413_and_leaves_nothing(
    api_settings, make_clip, tmp_path
):
    from fastapi.testclient import TestClient

    from transcoder.api import create_app

    small = api_settings.model_copy(update={"max_upload_bytes": 10_000})
    clip = make_clip(
        "big.mp4",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=640x360:r=25:d=2",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
    )
    with TestClient(create_app(small)) as c:
        c.headers["Authorization"] = "Bearer test-key-one"
        response = upload(c, clip)
        listed = c.get("/videos").json()

    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "too_large",
        "message": "the upload is larger than the limit of 10000 bytes",
    }
    assert listed["total"] == 0
    uploads = small.resolved_work_dir / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())


def test_upload_without_a_file_part_is_a_422(client):
    response = client.post("/videos", data={"profile": "web"}, files={"other": ("x", b"1")})

    assert response.status_code == 422
    assert response.json()["error"]["message"] == "the form has no 'file' part"


def test_unknown_profile_is_refused_before_anything_is_stored(client, make_clip):
    clip = make_clip("p.mp4", "-f", "lavfi", "-i", "testsrc2=s=320x180:d=1", "-c:v", "libx264")

    response = upload(client, clip, profile="/etc/passwd")

    assert response.status_code == 422
    assert "unknown profile '/etc/passwd'" in response.json()["error"]["message"]
    assert client.get("/videos").json()["total"] == 0


def test_list_filters_by_status_and_paginates(client, tmp_path, start_worker, wait_video):
    start_worker()
    ids = []
    for i in range(3):
        bad = tmp_path / f"bad{i}.mp4"
        bad.write_text("not a video")
        ids.append(upload(client, bad).json()["id"])
    for video_id in ids:
        wait_video(video_id)

    page = client.get("/videos?status=error&limit=2").json()
    rest = client.get("/videos?status=error&limit=2&offset=2").json()

    assert page["total"] == 3 and len(page["items"]) == 2 and len(rest["items"]) == 1
    assert {v["id"] for v in page["items"] + rest["items"]} == set(ids)
    assert client.get("/videos?status=succeeded").json()["total"] == 0
    assert page["items"][0]["error"].startswith("could not decode the file")


def test_url_import_from_a_local_server_when_allowed(
    api_settings, start_worker, small_clip, served
):
    from fastapi.testclient import TestClient

    from transcoder.api import create_app

    clip = small_clip
    url = served.add("/media/remote.mp4", clip)
    start_worker(env={"TRANSCODER_ALLOW_PRIVATE_URLS": "true"})
    allowed = api_settings.model_copy(update={"allow_private_urls": True})
    with TestClient(create_app(allowed)) as c:
        c.headers["Authorization"] = "Bearer test-key-one"
        response = c.post("/videos", json={"url": url})
        assert response.status_code == 202, response.text
        video_id = response.json()["id"]
        deadline = time.monotonic() + 120
        while (video := c.get(f"/videos/{video_id}").json())["status"] not in (
            "succeeded",
            "error",
        ) and time.monotonic() < deadline:
            time.sleep(0.5)

    assert video["status"] == "succeeded", video["error"]
    assert video["source_name"] == "remote.mp4" and video["source_url"] == url
    assert served.requests == ["/media/remote.mp4"]


@pytest.mark.parametrize(
    "target",
    [
        "LOCAL",
        "http://10.1.2.3/clip.mp4",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/clip.mp4",
        "http://localhost:{port}/media/clip.mp4",
        "REDIRECT",
        "file:///etc/passwd",
    ],
    ids=[
        "loopback",
        "private",
        "metadata",
        "ipv6-loopback",
        "name-to-loopback",
        "redirect",
        "file",
    ],
)
def test_url_import_refuses_non_public_addresses(
    client, start_worker, wait_video, served, make_clip, target
):
    clip = make_clip("ssrf.mp4", "-f", "lavfi", "-i", "testsrc2=s=320x180:d=1", "-c:v", "libx264")
    served.add("/media/clip.mp4", clip)
    served.redirects["/go"] = "http://169.254.169.254/latest/meta-data/"
    url = {"LOCAL": served.url("/media/clip.mp4"), "REDIRECT": served.url("/go")}.get(
        target, target.format(port=served.port)
    )
    start_worker()

    response = client.post("/videos", json={"url": url})

    assert response.status_code == 202
    video = wait_video(response.json()["id"])
    assert video["status"] == "error"
    assert video["error"].startswith("refused")
    assert served.requests == []  # refused before any connection, even the first hop


def test_callback_url_to_a_private_address_is_refused_at_submission(client):
    response = client.post(
        "/videos", json={"url": "https://example.com/a.mp4", "callback_url": "http://10.0.0.5/h"}
    )

    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("refused")


def _ffmpeg_for(storage: Path) -> bool:
    found = subprocess.run(["pgrep", "-f", f"ffmpeg .*file:{storage}/"], capture_output=True)
    return found.returncode == 0


def test_delete_stops_the_running_ffmpeg_and_removes_the_files(
    client, api_settings, start_worker, make_clip, wait_video
):
    clip = make_clip(
        "long.mp4",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=1280x720:r=30:d=60",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
    )
    start_worker()
    video_id = upload(client, clip).json()["id"]
    wait_video(video_id, until=("encoding",), timeout=60)
    storage = api_settings.resolved_storage_dir
    deadline = time.monotonic() + 60
    while not _ffmpeg_for(storage) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _ffmpeg_for(storage), "no encode started"

    response = client.delete(f"/videos/{video_id}")

    assert response.status_code == 204
    deadline = time.monotonic() + 10
    while _ffmpeg_for(storage) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _ffmpeg_for(storage)
    assert not (storage / "videos" / video_id).exists()
    assert client.get(f"/videos/{video_id}").status_code == 404
    assert client.delete(f"/videos/{video_id}").status_code == 404


def test_retry_reruns_only_the_failed_renditions(
    client, api_settings, start_worker, small_clip, wait_video, tmp_path
):
    # An ffmpeg that refuses VP8 encodes: H.264 renditions succeed, VP8 ones fail.
    picky = tmp_path / "ffmpeg-no-vp8"
    picky.write_text(
        '#!/bin/sh\ncase "$*" in *libvpx*) echo "vp8 is broken here" >&2; exit 1;; '
        'esac\nexec ffmpeg "$@"\n'
    )
    picky.chmod(0o755)
    clip = small_clip
    broken = start_worker(env={"TRANSCODER_FFMPEG_PATH": str(picky)})
    video_id = upload(client, clip).json()["id"]
    failed = wait_video(video_id)
    assert failed["status"] == "error"
    assert "vp8 is broken here" in failed["error"]
    broken.terminate()
    broken.wait(30)
    start_worker()

    response = client.post(f"/videos/{video_id}/retry")

    assert response.status_code == 202
    video = wait_video(video_id)
    assert video["status"] == "succeeded", video["error"]
    with session_scope(client.app.state.ctx.engine) as session:
        attempts = {r.name: r.attempts for r in records.renditions_of(session, video_id)}
    assert attempts == {"180p-h264": 1, "180p-vp8": 2}
    assert client.post(f"/videos/{video_id}/retry").status_code == 409


def test_metrics_report_videos_jobs_and_queues(client, start_worker, small_clip, wait_video):
    start_worker()
    clip = small_clip
    wait_video(upload(client, clip).json()["id"])

    text = client.get("/metrics").text

    assert 'transcoder_videos{status="succeeded"} 1.0' in text
    assert 'transcoder_jobs_total{kind="rendition",outcome="succeeded"} 2.0' in text
    prefix = client.app.state.ctx.settings.queue_prefix
    assert f'transcoder_queue_depth{{queue="{prefix}-encode"}} 0.0' in text
    assert 'transcoder_encode_seconds_total{rendition="180p-vp8"}' in text
    assert 'transcoder_output_bytes_total{rendition="180p-h264"}' in text


def test_callback_receives_signed_events_for_each_rendition_and_the_video(
    api_settings, start_worker, small_clip
):
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from fastapi.testclient import TestClient
    from pydantic import SecretStr

    from transcoder.api import create_app
    from transcoder.webhooks import verify_signature

    received: list[tuple[dict, bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secret = "hook-secret"
    settings = api_settings.model_copy(
        update={"allow_private_urls": True, "webhook_secret": SecretStr(secret)}
    )
    start_worker(env={"TRANSCODER_ALLOW_PRIVATE_URLS": "true", "TRANSCODER_WEBHOOK_SECRET": secret})
    clip = small_clip
    try:
        with TestClient(create_app(settings)) as c:
            c.headers["Authorization"] = "Bearer test-key-one"
            callback = f"http://127.0.0.1:{server.server_address[1]}/hooks"
            video_id = upload(c, clip, callback_url=callback).json()["id"]
            deadline = time.monotonic() + 120
            while (
                not any(h.get("X-Transcoder-Event") == "video.succeeded" for h, _ in received)
                and time.monotonic() < deadline
            ):
                time.sleep(0.3)
    finally:
        server.shutdown()
        server.server_close()

    events = sorted(h["X-Transcoder-Event"] for h, _ in received)
    assert events == ["rendition.ready", "rendition.ready", "video.succeeded"]
    for headers, body in received:
        assert verify_signature(secret, headers["X-Transcoder-Signature"], body)
        assert not verify_signature(secret, headers["X-Transcoder-Signature"], body + b" ")
        payload = json.loads(body)
        assert payload["video"]["id"] == video_id
    final = next(json.loads(b) for h, b in received if h["X-Transcoder-Event"] == "video.succeeded")
    assert final["video"]["status"] == "succeeded"
    assert all(r["url"] for r in final["video"]["renditions"])


def test_upload_file_name_never_becomes_a_path(client, api_settings, make_clip):
    clip = make_clip("evil.mp4", "-f", "lavfi", "-i", "testsrc2=s=320x180:d=1", "-c:v", "libx264")
    with clip.open("rb") as f:
        response = client.post(
            "/videos", files={"file": ("../../../../tmp/evil.mp4", f, "video/mp4")}
        )

    assert response.status_code == 202
    video = response.json()
    assert video["source_name"] == "../../../../tmp/evil.mp4"  # kept for display only
    stored = [
        p.relative_to(api_settings.resolved_storage_dir)
        for p in api_settings.resolved_storage_dir.rglob("*")
        if p.is_file()
    ]
    assert [str(p) for p in stored if p.name != ".signing-key"] == [f"videos/{video['id']}/source"]
