"""Files that try to make ffmpeg read something else, and runs that hang."""

from __future__ import annotations

import pytest

from transcoder.db import records
from transcoder.db.engine import session_scope
from transcoder.db.models import TaskStatus, VideoStatus
from transcoder.queue.context import build_context, install
from transcoder.submit import submit_file

SECRET = "s3cr3t-canary-7f1e"


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text(SECRET + "\n")
    return path


def run(ctx, path):
    video_id = submit_file(ctx, path)
    with session_scope(ctx.engine) as session:
        return records.get_video(session, video_id), list(records.renditions_of(session, video_id))


def leaked(settings) -> list[str]:
    """Every stored or scratch file that contains the secret."""
    hits = []
    for root in (settings.resolved_storage_dir, settings.resolved_work_dir):
        for path in root.rglob("*") if root.exists() else []:
            if path.is_file() and path.name != "source" and SECRET.encode() in path.read_bytes():
                hits.append(str(path))
    return hits


@pytest.mark.parametrize(
    "playlist",
    [
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nfile://{secret}\n#EXT-X-ENDLIST\n",
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n{secret}\n#EXT-X-ENDLIST\n",
        "ffconcat version 1.0\nfile '{secret}'\n",
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nfile://{secret}\n",
    ],
    ids=["hls-file-url", "hls-path", "ffconcat", "hls-master"],
)
@pytest.mark.parametrize("name", ["upload.mp4", "upload.m3u8"])
def test_playlist_pointing_at_a_local_file_is_refused_and_reads_nothing(
    ctx, tmp_path, secret_file, playlist, name, caplog
):
    caplog.set_level("DEBUG")
    path = tmp_path / name
    path.write_text(playlist.format(secret=secret_file))

    video, renditions = run(ctx, path)

    assert video.status == VideoStatus.ERROR
    assert video.error == "refused: the file is not a supported media container"
    assert renditions == []
    assert SECRET not in (video.error_detail or "") + caplog.text
    assert leaked(ctx.settings) == []


def test_hanging_ffmpeg_times_out_is_retried_and_then_errors(settings, small_clip, tmp_path):
    # An ffmpeg that never ends when asked for a rendition (the poster still works).
    hang = tmp_path / "ffmpeg-hangs"
    hang.write_text(
        '#!/bin/sh\ncase "$*" in *-progress*) exec sleep 600;; esac\nexec ffmpeg "$@"\n'
    )
    hang.chmod(0o755)
    stuck = settings.model_copy(
        update={
            "ffmpeg_path": str(hang),
            "encode_timeout_base": 2,
            "encode_timeout_factor": 0.1,
            "encode_retries": 1,
        }
    )
    ctx = install(build_context(stuck))
    clip = small_clip

    video, renditions = run(ctx, clip)

    assert video.status == VideoStatus.ERROR
    assert "ffmpeg timed out after 2 s" in video.error
    assert all(r.status == TaskStatus.ERROR and r.attempts == 2 for r in renditions)
    with session_scope(ctx.engine) as session:
        assert records.preview_of(session, video.id).status == TaskStatus.SUCCEEDED


def test_few_frames_spread_over_hours_are_refused_before_encoding(ctx, make_clip):
    # 30 frames, then a jump of almost four hours: tiny to upload, hours to encode.
    clip = make_clip(
        "jump.mkv",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:r=30:d=2",
        "-vf",
        "setpts='if(gte(N,30),PTS+13800/TB,PTS)'",
        "-fps_mode",
        "passthrough",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
    )

    video, renditions = run(ctx, clip)

    assert video.status == VideoStatus.ERROR
    assert video.error.startswith("the timestamps span 13802 s but the video holds only 60 frames")
    assert renditions == []


def test_memory_cap_applies_to_every_ffmpeg_run(settings, small_clip):
    # 40 MB of address space is far too little for ffmpeg: the cap is in force.
    capped = install(build_context(settings.model_copy(update={"ffmpeg_memory_mb": 40})))
    clip = small_clip

    video, renditions = run(capped, clip)

    assert video.status == VideoStatus.ERROR
    assert renditions and all(r.status == TaskStatus.ERROR for r in renditions)
    assert all(r.error.startswith("ffmpeg") for r in renditions)
