"""Inputs that made other public video services fail, synthesized here, with the right outcome.

Each case is rebuilt with ffmpeg's lavfi sources at test time, so a fresh clone needs no
media files.
"""

from __future__ import annotations

import socket
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
from PIL import Image

from transcoder.db import records
from transcoder.db.engine import session_scope
from transcoder.db.models import TaskStatus, VideoStatus
from transcoder.queue.context import build_context, install
from transcoder.submit import submit_file

X264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
VP9 = ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k"]
TONE = ["-f", "lavfi", "-i"]


def lavfi(spec: str) -> list[str]:
    return ["-f", "lavfi", "-i", spec]


def run(ctx, path: Path):
    video_id = submit_file(ctx, path)
    with session_scope(ctx.engine) as session:
        video = records.get_video(session, video_id)
        renditions = list(records.renditions_of(session, video_id))
        preview = records.preview_of(session, video_id)
    return video, renditions, preview


def streams(ffprobe_streams, ctx, key: str) -> tuple[dict, dict | None, dict]:
    info = ffprobe_streams(ctx.storage.fetch(key, Path("/unused")))
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next((s for s in info["streams"] if s["codec_type"] == "audio"), None)
    return video, audio, info


def succeeded(video, renditions, preview) -> None:
    assert video.status == VideoStatus.SUCCEEDED, video.error
    assert renditions and all(r.status == TaskStatus.SUCCEEDED for r in renditions)
    assert preview.status == TaskStatus.SUCCEEDED
    assert all(img["size_bytes"] > 0 for img in preview.images)


def test_c01_odd_vp9_webm_gets_every_rung_at_even_sizes(ctx, make_clip, ffprobe_streams):
    clip = make_clip(
        "c01.webm",
        *lavfi("testsrc2=s=1435x771:r=30:d=1,format=rgb24"),
        *lavfi("sine=f=440:d=1"),
        *VP9,
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "libopus",
        "-shortest",
    )
    video, renditions, preview = run(ctx, clip)

    succeeded(video, renditions, preview)
    sizes = {(r.width, r.height) for r in renditions}
    assert sizes == {(1340, 720), (894, 480), (670, 360), (446, 240)}
    for r in renditions:
        v, a, _ = streams(ffprobe_streams, ctx, r.storage_key)
        assert (v["width"], v["height"]) == (r.width, r.height) and a is not None


@pytest.mark.parametrize("size", ["1164x767", "1280x720"], ids=["c03-odd", "c25"])
def test_c03_c25_yuv444_h264_comes_out_8bit_420(ctx, make_clip, ffprobe_streams, size):
    clip = make_clip(
        f"444-{size}.mp4",
        *lavfi(f"testsrc2=s={size}:r=25:d=1,format=rgb24"),
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv444p",
        "-crf",
        "30",
    )
    video, renditions, preview = run(ctx, clip)

    succeeded(video, renditions, preview)
    assert video.probe["video"]["pix_fmt"] == "yuv444p"
    for r in renditions:
        v, _, _ = streams(ffprobe_streams, ctx, r.storage_key)
        assert v["pix_fmt"] == "yuv420p"
        assert v["width"] % 2 == 0 and v["height"] % 2 == 0


def test_c04_display_matrix_rotation_gives_upright_portrait(ctx, make_clip, ffprobe_streams):
    coded = make_clip(
        "c04-coded.mp4",
        *lavfi("testsrc2=s=1280x720:r=30:d=1"),
        *lavfi("sine=f=523:d=1"),
        *X264,
        "-c:a",
        "aac",
        "-shortest",
    )
    clip = make_clip("c04.mp4", "-i", str(coded), "-c", "copy", "-metadata:s:v:0", "rotate=90")
    video, renditions, preview = run(ctx, clip)

    succeeded(video, renditions, preview)
    assert max(r.height for r in renditions) == 1280
    for r in renditions:
        v, _, _ = streams(ffprobe_streams, ctx, r.storage_key)
        assert v["height"] > v["width"]
        assert not any("rotation" in sd for sd in v.get("side_data_list", []))
    poster = preview.images[0]
    assert (poster["width"], poster["height"]) == (720, 1280)


def test_c05_anamorphic_pal_comes_out_16_9_square_pixels(ctx, make_clip, ffprobe_streams):
    clip = make_clip(
        "c05.mp4",
        *lavfi("testsrc2=s=720x576:r=25:d=1"),
        *lavfi("sine=d=1"),
        "-vf",
        "setsar=64/45",
        *X264,
        "-c:a",
        "aac",
        "-shortest",
    )
    video, renditions, preview = run(ctx, clip)

    succeeded(video, renditions, preview)
    assert {(r.width, r.height) for r in renditions} == {(854, 480), (640, 360), (426, 240)}
    for r in renditions:
        v, _, _ = streams(ffprobe_streams, ctx, r.storage_key)
        assert v.get("sample_aspect_ratio", "1:1") == "1:1"
    assert (preview.images[0]["width"], preview.images[0]["height"]) == (1024, 576)


@pytest.fixture(scope="module")
def eight_k(make_clip):
    return make_clip(
        "c06.mp4",
        *lavfi("testsrc2=s=7680x4320:r=3:d=1"),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        "40",
        "-pix_fmt",
        "yuv420p",
    )


@pytest.mark.slow
def test_c06_8k_is_scaled_down_to_the_top_rung(ctx, eight_k):
    video, renditions, preview = run(ctx, eight_k)

    succeeded(video, renditions, preview)
    assert max(r.height for r in renditions) == 1080
    assert (preview.images[0]["width"], preview.images[0]["height"]) == (1280, 720)


def test_c06_frame_over_the_pixel_limit_is_refused_before_decoding(settings, eight_k):
    limited = settings.model_copy(update={"max_input_pixels": 3840 * 2160})
    ctx = install(build_context(limited))
    video, renditions, _ = run(ctx, eight_k)

    assert video.status == VideoStatus.ERROR
    assert video.error == "frame size 7680x4320 is over the limit of 8294400 pixels"
    assert renditions == []


def test_c07_tiny_frame_gets_one_rendition_at_its_own_size(ctx, make_clip, ffprobe_streams):
    clip = make_clip("c07.mp4", *lavfi("testsrc2=s=10x60:r=25:d=1"), *X264)
    video, renditions, preview = run(ctx, clip)

    succeeded(video, renditions, preview)
    assert sorted(r.name for r in renditions) == ["10p-h264", "10p-vp8"]
    for r in renditions:
        v, _, _ = streams(ffprobe_streams, ctx, r.storage_key)
        assert (v["width"], v["height"]) == (10, 60)


def test_c09_120fps_is_capped_at_60_with_timing_kept(ctx, make_clip, ffprobe_streams):
    clip = make_clip(
        "c09.mp4",
        *lavfi("testsrc2=s=360x800:r=120:d=1"),
        *lavfi("sine=d=1"),
        *X264,
        "-c:a",
        "aac",
        "-shortest",
    )
    video, renditions, preview = run(ctx, clip)

    succeeded(video, renditions, preview)
    for r in renditions:
        v, _, info = streams(ffprobe_streams, ctx, r.storage_key)
        assert v["avg_frame_rate"] == "60/1"
        assert abs(float(info["format"]["duration"]) - 1.0) <= 0.2


def test_c10_variable_frame_rate_becomes_constant(ctx, make_clip, ffprobe_streams):
    clip = make_clip(
        "c10.mp4",
        *lavfi("testsrc2=s=640x360:r=60:d=3"),
        *lavfi("sine=d=3"),
        "-vf",
        "settb=1/90000,setpts='(N/60+0.004*sin(N*1.7)+if(between(N,60,90),0.0083*(N-60),"
        "if(gt(N,90),0.25,0)))/TB'",
        "-fps_mode",
        "passthrough",
        "-enc_time_base:v",
        "1/90000",
        *X264,
        "-video_track_timescale",
        "90000",
        "-c:a",
        "aac",
    )
    video, renditions, preview = run(ctx, clip)

    succeeded(video, renditions, preview)
    assert video.probe["video"]["variable_frame_rate"] is True
    for r in renditions:
        v, a, info = streams(ffprobe_streams, ctx, r.storage_key)
        # WebM keeps millisecond timestamps, so its measured rate is only close to 59.94.
        assert abs(float(Fraction(v["avg_frame_rate"])) - 60000 / 1001) < 0.05
        assert a is not None
        assert abs(float(info["format"]["duration"]) - video.probe["video"]["duration"]) <= 0.2


def test_c11_very_short_clip_still_gets_renditions_and_a_poster(ctx, make_clip):
    clip = make_clip(
        "c11.mp4",
        *lavfi("testsrc2=s=640x360:r=30:d=0.4"),
        *lavfi("sine=d=0.4"),
        *X264,
        "-c:a",
        "aac",
        "-shortest",
    )
    video, renditions, preview = run(ctx, clip)

    succeeded(video, renditions, preview)
    assert len(renditions) == 4
    assert preview.images[0]["width"] == 640


def test_c12_negative_timestamps_start_at_zero_without_preroll(ctx, make_clip, ffprobe_streams):
    whole = make_clip(
        "c12-whole.mp4",
        *lavfi("testsrc2=s=640x360:r=25:d=2"),
        *lavfi("sine=d=2"),
        "-c:v",
        "libx264",
        "-bf",
        "0",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
    )
    clip = make_clip(
        "c12.mp4",
        "-itsoffset",
        "-0.5",
        "-i",
        str(whole),
        "-c",
        "copy",
        "-avoid_negative_ts",
        "disabled",
    )
    video, renditions, preview = run(ctx, clip)

    succeeded(video, renditions, preview)
    for r in renditions:
        v, a, info = streams(ffprobe_streams, ctx, r.storage_key)
        assert float(v.get("start_time", 0)) <= 0.05 and float(a.get("start_time", 0)) <= 0.05
        assert abs(float(info["format"]["duration"]) - 1.5) <= 0.1
        frames = int(v.get("nb_frames") or 0) or None
        if frames is not None:
            assert frames <= 39  # 1.5 s at 25 fps, no pre-roll frames


def test_c17_no_audio_gives_video_only_renditions(ctx, make_clip, ffprobe_streams):
    clip = make_clip("c17.mp4", *lavfi("testsrc2=s=640x360:r=30:d=1"), *X264)
    video, renditions, preview = run(ctx, clip)

    succeeded(video, renditions, preview)
    for r in renditions:
        _, a, _ = streams(ffprobe_streams, ctx, r.storage_key)
        assert a is None and r.audio_codec is None
        assert "-c:a" not in r.command


def test_c18_audio_only_ac3_is_refused_with_no_video_stream(ctx, make_clip):
    clip = make_clip(
        "c18.ac3",
        *lavfi("sine=f=440:d=1"),
        "-ac",
        "2",
        "-ar",
        "48000",
        "-c:a",
        "ac3",
        "-b:a",
        "192k",
    )
    video, renditions, _ = run(ctx, clip)

    assert video.status == VideoStatus.ERROR
    assert video.error == "no video stream (audio only)"
    assert renditions == []


def test_c19_cover_art_is_not_mistaken_for_video(ctx, make_clip):
    cover = make_clip("cover.jpg", *lavfi("testsrc2=s=600x600:d=1"), "-frames:v", "1")
    clip = make_clip(
        "c19.m4a",
        *lavfi("sine=f=220:d=1"),
        "-i",
        str(cover),
        "-map",
        "0:a",
        "-map",
        "1:v",
        "-c:a",
        "aac",
        "-c:v",
        "copy",
        "-disposition:v:0",
        "attached_pic",
    )
    video, renditions, _ = run(ctx, clip)

    assert video.status == VideoStatus.ERROR
    assert video.error == "no video stream (audio only)"
    assert renditions == []


def test_c21_subtitle_track_is_left_out_and_the_transcode_succeeds(
    ctx, make_clip, tmp_path, ffprobe_streams
):
    srt = tmp_path / "c21.srt"
    srt.write_text(
        "1\n00:00:00,000 --> 00:00:01,500\nFirst\n\n2\n00:00:01,500 --> 00:00:03,000\nSecond\n"
    )
    clip = make_clip(
        "c21.mkv",
        *lavfi("testsrc2=s=640x360:r=25:d=3"),
        *lavfi("sine=d=3"),
        "-i",
        str(srt),
        "-map",
        "0",
        "-map",
        "1",
        "-map",
        "2",
        *X264,
        "-c:a",
        "aac",
        "-c:s",
        "srt",
        "-shortest",
    )
    video, renditions, preview = run(ctx, clip)

    succeeded(video, renditions, preview)
    for r in renditions:
        _, _, info = streams(ffprobe_streams, ctx, r.storage_key)
        assert {s["codec_type"] for s in info["streams"]} == {"video", "audio"}


def signal_stats(path: Path) -> dict[str, float]:
    """Average luma range and saturation of the first frames, from ffmpeg's signalstats."""
    done = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(path),
            "-frames:v",
            "5",
            "-vf",
            "signalstats,metadata=print:file=-",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    values: dict[str, list[float]] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.startswith("lavfi.signalstats."):
            values.setdefault(key.rsplit(".", 1)[-1], []).append(float(value))
    return {k: sum(v) / len(v) for k, v in values.items()}


@pytest.mark.slow
def test_c26_hdr10_is_tone_mapped_to_sdr_not_washed_out(ctx, make_clip, ffprobe_streams):
    clip = make_clip(
        "c26.mp4",
        *lavfi("testsrc2=s=1280x720:r=30:d=1"),
        "-c:v",
        "libx265",
        "-preset",
        "fast",
        "-pix_fmt",
        "yuv420p10le",
        "-x265-params",
        "log-level=error:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:hdr10=1",
        "-color_primaries",
        "bt2020",
        "-color_trc",
        "smpte2084",
        "-colorspace",
        "bt2020nc",
    )
    video, renditions, preview = run(ctx, clip)

    succeeded(video, renditions, preview)
    assert video.probe["video"]["color_transfer"] == "smpte2084"
    assert "tonemap" in renditions[0].command
    for r in renditions:
        v, _, _ = streams(ffprobe_streams, ctx, r.storage_key)
        assert v["pix_fmt"] == "yuv420p" and v.get("color_transfer") != "smpte2084"
    stats = signal_stats(ctx.storage.fetch(renditions[0].storage_key, Path("/unused")))
    # testsrc2 is a saturated test pattern: washed-out output would have a narrow luma
    # range and little saturation left.
    assert stats["YMAX"] - stats["YMIN"] > 150
    assert stats["SATAVG"] > 20


def test_c31_interlaced_source_is_deinterlaced(ctx, make_clip):
    clip = make_clip(
        "c31.mp4",
        *lavfi("testsrc2=s=720x576:r=50:d=1"),
        *lavfi("sine=d=1"),
        "-vf",
        "interlace=scan=tff:lowpass=0",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-flags",
        "+ildct+ilme",
        "-x264-params",
        "tff=1",
        "-c:a",
        "aac",
        "-shortest",
    )
    video, renditions, preview = run(ctx, clip)

    succeeded(video, renditions, preview)
    assert video.probe["video"]["field_order"] in ("tt", "tb")
    assert all("bwdif" in r.command for r in renditions)


@pytest.fixture(scope="module")
def four_seconds(make_clip):
    return make_clip(
        "c35.mp4",
        *lavfi("testsrc2=s=640x360:r=30:d=4"),
        *lavfi("sine=d=4"),
        *X264,
        "-c:a",
        "aac",
        "-shortest",
    )


def test_c35a_mp4_cut_before_its_index_errors_once(ctx, four_seconds, tmp_path):
    cut = tmp_path / "c35a.mp4"
    cut.write_bytes(four_seconds.read_bytes()[: four_seconds.stat().st_size * 60 // 100])
    video, renditions, _ = run(ctx, cut)

    assert video.status == VideoStatus.ERROR
    assert video.error.startswith("could not decode the file")
    assert renditions == []


def test_c35b_empty_file_errors(ctx, tmp_path):
    empty = tmp_path / "c35b.mp4"
    empty.touch()
    video, _, _ = run(ctx, empty)

    assert video.status == VideoStatus.ERROR
    assert video.error == "the file is empty (0 bytes)"


def test_c35c_truncated_faststart_mp4_is_caught_as_short(ctx, make_clip, four_seconds, tmp_path):
    faststart = make_clip(
        "c35-fs.mp4", "-i", str(four_seconds), "-c", "copy", "-movflags", "+faststart"
    )
    cut = tmp_path / "c35c.mp4"
    cut.write_bytes(faststart.read_bytes()[: faststart.stat().st_size * 60 // 100])
    video, renditions, _ = run(ctx, cut)

    assert video.status == VideoStatus.ERROR
    assert "the source may be truncated" in video.error
    assert all(r.attempts == 1 for r in renditions)  # a damaged input is not retried
    # What ffmpeg said is kept for operators even though its exit code was 0.
    failed = [r for r in renditions if r.status == TaskStatus.ERROR]
    assert failed and all(r.exit_code == 0 and r.stderr_tail for r in failed)
    assert video.error_detail


def test_c36_playlist_named_mp4_is_refused_without_any_connection(ctx, tmp_path):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    playlist = tmp_path / "c36.mp4"
    playlist.write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n"
        f"http://127.0.0.1:{port}/canary.ts\n#EXT-X-ENDLIST\n"
    )

    video, renditions, _ = run(ctx, playlist)

    assert video.status == VideoStatus.ERROR
    assert "not a supported media container" in video.error
    assert renditions == []
    with pytest.raises(TimeoutError):
        listener.accept()
    listener.close()


def test_c29_vp9_alpha_is_decoded_and_flattened_onto_black(ctx, make_clip):
    box = "drawbox=x=180:y=60:w=120:h=120:t=fill"
    clip = make_clip(
        "c29.webm",
        *lavfi(f"color=c=white:s=480x270:r=25:d=1,{box}:color=red"),
        *lavfi(f"color=c=black:s=480x270:r=25:d=1,{box}:color=white,format=gray"),
        "-filter_complex",
        "[0][1]alphamerge",
        "-c:v",
        "libvpx-vp9",
        "-pix_fmt",
        "yuva420p",
        "-b:v",
        "300k",
    )
    video, renditions, preview = run(ctx, clip)

    succeeded(video, renditions, preview)
    assert video.probe["video"]["has_alpha"] is True
    poster = Image.open(ctx.storage.fetch(preview.images[0]["key"], Path("/unused")))
    # The transparent area was stored as white; flattened, it must be black, the box red.
    assert max(poster.getpixel((20, 20))) < 40
    red, green, _ = poster.getpixel((240, 120))
    assert red > 180 and green < 80
