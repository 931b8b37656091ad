"""The whole pipeline in-process (embedded defaults) on real and synthesized clips."""

from __future__ import annotations

from pathlib import Path

import pytest

from transcoder.db import records
from transcoder.db.engine import session_scope
from transcoder.db.models import TaskStatus, VideoStatus
from transcoder.queue.context import Context
from transcoder.submit import submit_file


def outcome(ctx: Context, video_id: str):
    with session_scope(ctx.engine) as session:
        video = records.get_video(session, video_id)
        return (
            video,
            list(records.renditions_of(session, video_id)),
            records.preview_of(session, video_id),
        )


def stored(ctx: Context, key: str) -> Path:
    return ctx.storage.fetch(key, Path("/nonexistent"))


def decoded(ffprobe_streams, path: Path) -> tuple[dict, dict | None, float]:
    info = ffprobe_streams(path)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next((s for s in info["streams"] if s["codec_type"] == "audio"), None)
    return video, audio, float(info["format"]["duration"])


@pytest.mark.slow
def test_bigbuckbunny_gets_720_to_240_in_both_codecs_with_audio(ctx, sample, ffprobe_streams):
    video_id = submit_file(ctx, sample("bigbuckbunny.mp4"))

    video, renditions, preview = outcome(ctx, video_id)
    assert video.status == VideoStatus.SUCCEEDED, video.error
    assert video.progress == 1.0
    assert video.probe["video"]["width"] == 1280
    assert sorted(r.name for r in renditions) == sorted(
        f"{size}p-{fmt}" for size in (720, 480, 360, 240) for fmt in ("h264", "vp8")
    )
    for r in renditions:
        assert r.status == TaskStatus.SUCCEEDED
        v, a, duration = decoded(ffprobe_streams, stored(ctx, r.storage_key))
        assert v["codec_name"] == r.video_codec == ("h264" if r.container == "mp4" else "vp8")
        assert (v["width"], v["height"]) == (r.width, r.height)
        assert r.height in (720, 480, 360, 240)
        assert v["pix_fmt"] == "yuv420p"
        assert a is not None and a["codec_name"] == ("aac" if r.container == "mp4" else "opus")
        assert int(a["channels"]) == 2
        assert abs(duration - 5.312) <= 0.2
        assert r.command and "-threads" in r.command and r.worker and r.attempts == 1
    assert preview.status == TaskStatus.SUCCEEDED
    assert [img["kind"] for img in preview.images] == ["poster", "thumb-480", "thumb-160"]
    assert (preview.images[0]["width"], preview.images[0]["height"]) == (1280, 720)


def test_mp4_renditions_have_the_index_at_the_front(ctx, make_clip):
    clip = make_clip(
        "short.mp4",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:r=25:d=1",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
    )
    video_id = submit_file(ctx, clip)

    _, renditions, _ = outcome(ctx, video_id)
    mp4 = next(r for r in renditions if r.container == "mp4")
    head = stored(ctx, mp4.storage_key).read_bytes()[:4096]
    assert head.find(b"moov") != -1 and (
        head.find(b"mdat") == -1 or head.find(b"moov") < head.find(b"mdat")
    )


def test_bikes_without_audio_is_not_upscaled_and_stays_silent(ctx, sample, ffprobe_streams):
    video_id = submit_file(ctx, sample("bikes.mp4"))

    video, renditions, _ = outcome(ctx, video_id)
    assert video.status == VideoStatus.SUCCEEDED, video.error
    assert {(r.width, r.height) for r in renditions} == {(564, 240)}
    for r in renditions:
        v, a, duration = decoded(ffprobe_streams, stored(ctx, r.storage_key))
        assert (v["width"], v["height"]) == (564, 240)
        assert a is None and r.audio_codec is None
        assert abs(duration - 10.0) <= 0.2


def test_carphone_below_every_rung_gets_one_rendition_at_display_size(ctx, sample, ffprobe_streams):
    # 176x144 with sample aspect 128:117 shows as 192.5x144.
    video_id = submit_file(ctx, sample("carphone_pristine.mp4"))

    video, renditions, preview = outcome(ctx, video_id)
    assert video.status == VideoStatus.SUCCEEDED, video.error
    assert sorted(r.name for r in renditions) == ["144p-h264", "144p-vp8"]
    for r in renditions:
        v, _, _ = decoded(ffprobe_streams, stored(ctx, r.storage_key))
        assert (v["width"], v["height"]) == (192, 144)
        assert v.get("sample_aspect_ratio", "1:1") in ("1:1", "0:1")
    assert preview.status == TaskStatus.SUCCEEDED


def test_rotated_phone_clip_comes_out_upright_portrait(ctx, make_clip, ffprobe_streams):
    landscape = make_clip(
        "land.mp4",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=640x360:r=25:d=1",
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
    phone = make_clip(
        "phone.mp4", "-i", str(landscape), "-c", "copy", "-metadata:s:v:0", "rotate=90"
    )
    video_id = submit_file(ctx, phone)

    video, renditions, preview = outcome(ctx, video_id)
    assert video.status == VideoStatus.SUCCEEDED, video.error
    assert {(r.width, r.height) for r in renditions} == {(360, 640), (240, 426)}
    for r in renditions:
        info = ffprobe_streams(stored(ctx, r.storage_key))
        v = next(s for s in info["streams"] if s["codec_type"] == "video")
        assert (v["width"], v["height"]) == (r.width, r.height)
        assert not any("rotation" in side for side in v.get("side_data_list", []))
        assert "rotate" not in v.get("tags", {})
    assert (preview.images[0]["width"], preview.images[0]["height"]) == (360, 640)


def test_odd_sized_clip_gets_even_sizes_with_the_aspect_kept(ctx, make_clip, ffprobe_streams):
    clip = make_clip(
        "odd.mkv",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=641x361:r=25:d=1,format=rgb24",
        "-c:v",
        "libx264rgb",
        "-crf",
        "30",
    )
    video_id = submit_file(ctx, clip)

    video, renditions, _ = outcome(ctx, video_id)
    assert video.status == VideoStatus.SUCCEEDED, video.error
    assert {(r.width, r.height) for r in renditions} == {(640, 360), (426, 240)}
    for r in renditions:
        v, _, _ = decoded(ffprobe_streams, stored(ctx, r.storage_key))
        assert v["width"] % 2 == 0 and v["height"] % 2 == 0
        assert v["pix_fmt"] == "yuv420p"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "the file is empty"),
        (b"this is a text file, not a video\n" * 20, "could not decode"),
    ],
    ids=["empty", "text"],
)
def test_unreadable_input_ends_in_error_with_a_reason(ctx, tmp_path, content, reason):
    bad = tmp_path / "upload.mp4"
    bad.write_bytes(content)

    video_id = submit_file(ctx, bad)

    video, renditions, _ = outcome(ctx, video_id)
    assert video.status == VideoStatus.ERROR
    assert reason in video.error
    assert renditions == []


def test_truncated_mp4_ends_in_error_and_leaves_no_rendition_running(ctx, make_clip, tmp_path):
    whole = make_clip(
        "whole.mp4",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:r=25:d=2",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
    )
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])

    video_id = submit_file(ctx, cut)

    video, renditions, _ = outcome(ctx, video_id)
    assert video.status == VideoStatus.ERROR
    assert "could not decode" in video.error
    assert all(r.status in (TaskStatus.SUCCEEDED, TaskStatus.ERROR) for r in renditions)


def test_audio_only_file_is_refused_as_having_no_video(ctx, make_clip):
    clip = make_clip("tone.m4a", "-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac")

    video_id = submit_file(ctx, clip)

    video, _, _ = outcome(ctx, video_id)
    assert video.status == VideoStatus.ERROR
    assert video.error == "no video stream (audio only)"


def test_unexpected_planning_failure_ends_the_video_in_error(ctx, make_clip, monkeypatch):
    from transcoder.queue import jobs

    def broken(*args, **kwargs):
        raise ValueError("a bug in planning")

    monkeypatch.setattr(jobs, "plan_renditions", broken)
    clip = make_clip(
        "plan-bug.mp4",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:r=25:d=1",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
    )

    video_id = submit_file(ctx, clip)

    video, renditions, _ = outcome(ctx, video_id)
    assert video.status == VideoStatus.ERROR
    assert video.error == "internal error while planning (ValueError)"
    assert video.error_detail == "a bug in planning"
    assert renditions == []


def test_garbage_rotation_tag_is_ignored(ctx, make_clip):
    plain = make_clip(
        "plain.mp4",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:r=25:d=1",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
    )
    tagged = make_clip(
        "rot-banana.mkv", "-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=banana"
    )

    video_id = submit_file(ctx, tagged)

    video, renditions, _ = outcome(ctx, video_id)
    assert video.status == VideoStatus.SUCCEEDED, video.error
    assert {(r.width, r.height) for r in renditions} == {(320, 240)}


def test_extreme_sample_aspect_ratio_is_refused_before_planning(ctx, make_clip):
    clip = make_clip(
        "sar50.mp4",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:r=25:d=1",
        "-vf",
        "setsar=50",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
    )

    video_id = submit_file(ctx, clip)

    video, renditions, _ = outcome(ctx, video_id)
    assert video.status == VideoStatus.ERROR
    assert video.error == "display size 16000x240 (sample aspect ratio 50:1) is more than 10:1"
    assert renditions == []


def test_tiny_odd_source_poster_is_not_upscaled(ctx, make_clip):
    clip = make_clip(
        "3x5.mkv", "-f", "lavfi", "-i", "testsrc2=s=3x5:r=25:d=1,format=rgb24", "-c:v", "libx264rgb"
    )

    video_id = submit_file(ctx, clip)

    video, renditions, preview = outcome(ctx, video_id)
    assert video.status == VideoStatus.SUCCEEDED, video.error
    assert {(r.width, r.height) for r in renditions} == {(2, 4)}
    assert (preview.images[0]["width"], preview.images[0]["height"]) == (2, 4)
