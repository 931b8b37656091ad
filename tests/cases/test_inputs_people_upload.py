"""More inputs people really upload: several audio tracks, data streams, HLG."""

from __future__ import annotations

import subprocess
from pathlib import Path

from transcoder.db import records
from transcoder.db.engine import session_scope
from transcoder.db.models import VideoStatus
from transcoder.submit import submit_file


def run(ctx, path):
    video_id = submit_file(ctx, path)
    with session_scope(ctx.engine) as session:
        return records.get_video(session, video_id), list(records.renditions_of(session, video_id))


def loudness(path: Path) -> float:
    """Mean volume in dB of a file's audio, from ffmpeg's volumedetect."""
    done = subprocess.run(
        ["ffmpeg", "-nostdin", "-i", str(path), "-af", "volumedetect", "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    line = next(ln for ln in done.stderr.splitlines() if "mean_volume" in ln)
    return float(line.split("mean_volume:")[1].split()[0])


def test_the_audio_track_flagged_default_is_the_one_kept(ctx, make_clip):
    # Three tracks: silent, loud (flagged default), silent.
    clip = make_clip(
        "three-tracks.mkv",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x180:r=25:d=1",
        "-f",
        "lavfi",
        "-i",
        "anullsrc=d=1",
        "-f",
        "lavfi",
        "-i",
        "sine=f=440:d=1",
        "-f",
        "lavfi",
        "-i",
        "anullsrc=d=1",
        "-map",
        "0",
        "-map",
        "1",
        "-map",
        "2",
        "-map",
        "3",
        "-c:v",
        "libx264",
        "-c:a",
        "aac",
        "-disposition:a:0",
        "0",
        "-disposition:a:1",
        "default",
        "-disposition:a:2",
        "0",
        "-shortest",
    )

    video, renditions = run(ctx, clip)

    assert video.status == VideoStatus.SUCCEEDED, video.error
    assert all(r.plan["audio_index"] == 2 for r in renditions)
    mp4 = next(r for r in renditions if r.container == "mp4")
    assert loudness(ctx.storage.fetch(mp4.storage_key, Path("/unused"))) > -40


def test_first_audio_track_is_kept_when_none_is_flagged(ctx, make_clip):
    clip = make_clip(
        "two-tracks.mkv",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x180:r=25:d=1",
        "-f",
        "lavfi",
        "-i",
        "sine=f=440:d=1",
        "-f",
        "lavfi",
        "-i",
        "anullsrc=d=1",
        "-map",
        "0",
        "-map",
        "1",
        "-map",
        "2",
        "-c:v",
        "libx264",
        "-c:a",
        "aac",
        "-disposition:a:0",
        "0",
        "-disposition:a:1",
        "0",
        "-shortest",
    )

    video, renditions = run(ctx, clip)

    assert video.status == VideoStatus.SUCCEEDED, video.error
    assert all(r.plan["audio_index"] == 1 for r in renditions)


def test_data_stream_beside_the_video_is_ignored(ctx, make_clip, small_clip):
    base = small_clip
    clip = make_clip(
        "with-data.mkv",
        "-i",
        str(base),
        "-f",
        "lavfi",
        "-i",
        "sine=d=1",
        "-attach",
        str(base),
        "-metadata:s:t",
        "mimetype=application/octet-stream",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "copy",
        "-c:a",
        "aac",
    )

    video, renditions = run(ctx, clip)

    assert video.status == VideoStatus.SUCCEEDED, video.error
    assert {r.name for r in renditions} == {"180p-h264", "180p-vp8"}


def test_hlg_hdr_is_tone_mapped_to_8bit_sdr(ctx, make_clip, ffprobe_streams):
    clip = make_clip(
        "hlg.mkv",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=640x360:r=25:d=1",
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p10le",
        "-x265-params",
        "log-level=error:colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc",
        "-color_primaries",
        "bt2020",
        "-color_trc",
        "arib-std-b67",
        "-colorspace",
        "bt2020nc",
    )

    video, renditions = run(ctx, clip)

    assert video.status == VideoStatus.SUCCEEDED, video.error
    assert video.probe["video"]["color_transfer"] == "arib-std-b67"
    for r in renditions:
        assert "tonemap" in r.command
        stream = ffprobe_streams(ctx.storage.fetch(r.storage_key, Path("/unused")))["streams"][0]
        assert stream["pix_fmt"] == "yuv420p"


def test_a_fifth_of_a_second_still_gets_renditions_and_a_poster(ctx, make_clip):
    clip = make_clip(
        "short-0.2.mp4",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x180:r=25:d=0.2",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
    )

    video, renditions = run(ctx, clip)

    assert video.status == VideoStatus.SUCCEEDED, video.error
    with session_scope(ctx.engine) as session:
        preview = records.preview_of(session, video.id)
    assert preview.images[0]["size_bytes"] > 0 and len(renditions) == 2


def test_a_16x16_clip_keeps_its_size(ctx, make_clip):
    clip = make_clip(
        "16.mp4",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=16x16:r=25:d=1",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
    )

    video, renditions = run(ctx, clip)

    assert video.status == VideoStatus.SUCCEEDED, video.error
    assert {(r.width, r.height) for r in renditions} == {(16, 16)}
