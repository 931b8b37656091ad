"""The `transcoder` command as a user runs it: a real process, real files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def transcoder(*args: str, cwd: Path, env: dict[str, str] | None = None):
    environ = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    return subprocess.run(
        [sys.executable, "-m", "transcoder", *args],
        cwd=cwd,
        env=environ | (env or {}),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_transcode_puts_renditions_and_preview_in_out_dir(tmp_path, make_clip, ffprobe_streams):
    clip = make_clip(
        "cli.mp4",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=480x270:r=25:d=1",
        "-f",
        "lavfi",
        "-i",
        "sine=d=1",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
    )

    done = transcoder("transcode", str(clip), "--out", "result", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    files = sorted(p.name for p in (tmp_path / "result").iterdir())
    assert files == [
        "240p-h264.mp4",
        "240p-vp8.webm",
        "poster.jpg",
        "thumb-160.jpg",
        "thumb-480.jpg",
    ]
    info = ffprobe_streams(tmp_path / "result" / "240p-vp8.webm")
    assert [s["codec_name"] for s in info["streams"]] == ["vp8", "opus"]
    assert "240p-h264.mp4" in done.stdout and "426x240" in done.stdout


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "the file is empty (0 bytes)"), (b"hello\n" * 100, "could not decode the file")],
    ids=["empty", "text"],
)
def test_transcode_of_bad_input_prints_one_line_and_exits_non_zero(tmp_path, content, reason):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(content)

    done = transcoder("transcode", str(bad), "--out", "result", cwd=tmp_path)

    assert done.returncode == 1
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: video ") and reason in lines[0]
    assert "Traceback" not in done.stderr + done.stdout


def test_transcode_of_missing_file_says_so(tmp_path):
    done = transcoder("transcode", "nowhere.mp4", cwd=tmp_path)

    assert done.returncode == 1
    assert done.stderr.strip() == "error: no such file: nowhere.mp4"


def test_invalid_profile_file_is_refused_naming_the_field(tmp_path, make_clip):
    clip = make_clip("cli2.mp4", "-f", "lavfi", "-i", "testsrc2=s=320x240:d=1", "-c:v", "libx264")
    profile = tmp_path / "mine.toml"
    profile.write_text('name = "mine"\n[[formats]]\nname = "h264"\ncontainer = "avi"\n')

    done = transcoder("transcode", str(clip), "--profile", str(profile), cwd=tmp_path)

    assert done.returncode == 1
    assert "field formats.0.container" in done.stderr


def test_status_shows_a_finished_video(tmp_path, make_clip):
    clip = make_clip(
        "cli3.mp4",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:d=1",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
    )
    env = {"TRANSCODER_DATA_DIR": str(tmp_path / "data")}
    submitted = transcoder("submit", str(clip), cwd=tmp_path, env=env)
    assert submitted.returncode == 0, submitted.stderr
    video_id = submitted.stdout.strip()

    shown = transcoder("status", video_id, cwd=tmp_path, env=env)

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"video {video_id} (") and "cli3.mp4" in shown.stdout
    assert "succeeded" in shown.stdout and "240p-vp8" in shown.stdout


def test_worker_without_redis_explains_what_is_missing(tmp_path):
    done = transcoder("worker", cwd=tmp_path)

    assert done.returncode == 1
    assert "REDIS_URL is not set" in done.stderr


def test_placeholder_secret_stops_the_worker_in_one_line(tmp_path):
    done = transcoder("worker", cwd=tmp_path, env={"DATABASE_URL": "postgresql://REPLACE-ME@db/x"})

    assert done.returncode == 1
    assert done.stderr.strip() == "error: DATABASE_URL still holds the placeholder REPLACE-ME"


def test_brackets_in_a_path_are_printed_as_they_are(tmp_path):
    done = transcoder("transcode", "a[/x]/nope.mp4", cwd=tmp_path)

    assert done.returncode == 1
    assert done.stderr.strip() == "error: no such file: a[/x]/nope.mp4"


def test_file_name_that_is_not_utf8_is_accepted(tmp_path, make_clip):
    clip = make_clip(
        "u.mp4",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:r=25:d=1",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
    )
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/bad\xff\xfe.mp4"))
    odd.write_bytes(clip.read_bytes())
    env = {"TRANSCODER_DATA_DIR": str(tmp_path / "data")}

    done = transcoder("submit", os.fsdecode(bytes(odd)), cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    shown = transcoder("status", done.stdout.strip(), "--json", cwd=tmp_path, env=env)

    assert (
        '"source_name": "bad\\ufffd\\ufffd.mp4"' in shown.stdout
        or "bad\ufffd\ufffd.mp4" in shown.stdout
    )
    assert '"status": "succeeded"' in shown.stdout


def test_sigterm_stops_the_encodes_and_records_the_interruption(tmp_path, make_clip):
    clip = make_clip(
        "long.mp4",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=1280x720:r=30:d=40",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
    )
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env["TRANSCODER_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.Popen(
        [sys.executable, "-m", "transcoder", "transcode", str(clip), "--out", "o"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not _encoding(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _encoding(tmp_path), "no ffmpeg started"

    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 130
    assert stderr.strip().splitlines()[-1].endswith("interrupted before it finished")
    assert not _encoding(tmp_path)
    ids = [p.name for p in (tmp_path / "data" / "storage" / "videos").iterdir()]
    shown = transcoder(
        "status",
        ids[0],
        "--json",
        cwd=tmp_path,
        env={"TRANSCODER_DATA_DIR": str(tmp_path / "data")},
    )
    assert '"status": "error"' in shown.stdout
    assert '"status": "running"' not in shown.stdout and '"status": "queued"' not in shown.stdout


def _encoding(data: Path) -> bool:
    """Whether an ffmpeg reading from this test's storage is running."""
    found = subprocess.run(["pgrep", "-f", f"ffmpeg .*file:{data}/"], capture_output=True)
    return found.returncode == 0
