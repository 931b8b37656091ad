"""The ffmpeg argument lists, checked as lists: no process is started here."""

from __future__ import annotations

from pathlib import Path

import pytest

from transcoder.encode.command import poster_command, rendition_command
from transcoder.media.info import AudioStream, MediaInfo, VideoStream
from transcoder.media.inputs import ALLOWED_DEMUXERS
from transcoder.profiles import load_profile
from transcoder.profiles.plan import RenditionPlan, plan_preview, plan_renditions

SOURCE = Path("/media/in/source.mov")
OUTPUT = Path("/media/out/rendition")


def source_info(*, audio_index: int | None = 1, **video_fields) -> MediaInfo:
    """A 1280x720 25 fps source; keyword arguments override video fields."""
    fields = {"index": 0, "codec": "h264", "width": 1280, "height": 720, "frame_rate": "25/1"}
    audio = []
    if audio_index is not None:
        audio = [AudioStream(index=audio_index, codec="aac", channels=2, sample_rate=48000)]
    return MediaInfo(
        container="mov,mp4,m4a,3gp,3g2,mj2",
        duration=4.0,
        video=VideoStream(**(fields | video_fields)),
        audio=audio,
    )


def plan(name: str = "480p-h264", **source) -> RenditionPlan:
    plans = {p.name: p for p in plan_renditions(source_info(**source), load_profile("web"))}
    return plans[name]


def command(rendition: RenditionPlan, threads: int = 2) -> list[str]:
    return rendition_command(rendition, SOURCE, OUTPUT, threads=threads)


def after(args: list[str], flag: str) -> str:
    """The value following the first occurrence of `flag`."""
    return args[args.index(flag) + 1]


def all_after(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args) if arg == flag]


def filters(args: list[str]) -> list[str]:
    """The filter names of the (single, linear) filter graph, in order."""
    graph = after(args, "-filter_complex")
    return [step.split("]", 1)[1].split("=", 1)[0] for step in graph.split(";")]


def test_input_is_confined_to_local_files_and_media_demuxers_before_i():
    args = command(plan())

    i = args.index("-i")
    assert args.index("-protocol_whitelist") < i
    assert args.index("-format_whitelist") < i
    assert after(args, "-protocol_whitelist") == "file"
    assert after(args, "-format_whitelist").split(",") == list(ALLOWED_DEMUXERS)
    assert after(args, "-i") == f"file:{SOURCE}"


@pytest.mark.parametrize("playlist_or_trick", ["hls", "concat", "image2", "tty", "lavfi", "sdp"])
def test_demuxers_that_open_other_files_are_not_allowed(playlist_or_trick):
    allowed = after(command(plan()), "-format_whitelist").split(",")

    assert playlist_or_trick not in allowed


def test_output_is_a_file_url_and_overwritten():
    args = command(plan())

    assert f"file:{OUTPUT}" in args
    assert args[args.index(f"file:{OUTPUT}") :] == [f"file:{OUTPUT}", "-y"]


@pytest.mark.parametrize("threads", [1, 3, 8])
def test_threads_value_of_the_job_is_given_to_decoder_filters_and_encoder(threads):
    args = command(plan(), threads=threads)

    i = args.index("-i")
    decoder, encoder = [n for n, arg in enumerate(args) if arg == "-threads"]
    assert decoder < i < encoder
    assert all_after(args, "-threads") == [str(threads), str(threads)]
    assert after(args, "-filter_complex_threads") == str(threads)


def test_progress_is_reported_on_stdout_without_reading_stdin():
    args = command(plan())

    assert args[0] == "ffmpeg"
    assert after(args, "-progress") == "pipe:1"
    assert "-nostdin" in args
    assert "-nostats" in args


def test_ffmpeg_binary_can_be_chosen():
    args = rendition_command(plan(), SOURCE, OUTPUT, threads=1, ffmpeg_bin="/opt/ff/ffmpeg")

    assert args[0] == "/opt/ff/ffmpeg"


def test_h264_rendition_uses_preset_crf_capped_rate_and_faststart_mp4():
    args = command(plan("480p-h264"))

    assert after(args, "-c:v") == "libx264"
    assert after(args, "-preset") == "veryfast"
    assert after(args, "-profile:v") == "high"
    assert after(args, "-crf") == "23"
    assert after(args, "-maxrate") == "1500k"
    assert after(args, "-bufsize") == "3000k"
    assert after(args, "-movflags") == "+faststart"
    assert after(args, "-f") == "mp4"
    assert after(args, "-pix_fmt") == "yuv420p"
    assert after(args, "-g") == "50"


def test_vp8_rendition_uses_good_deadline_with_speed_and_capped_rate():
    args = command(plan("480p-vp8"))

    assert after(args, "-c:v") == "libvpx"
    assert after(args, "-deadline") == "good"
    assert int(after(args, "-cpu-used")) == 4
    assert after(args, "-crf") == "10"
    assert after(args, "-b:v") == after(args, "-maxrate") == "1800k"
    assert after(args, "-bufsize") == "3600k"
    assert after(args, "-f") == "webm"


def test_vp8_rendition_never_uses_the_slowest_default():
    args = command(plan("480p-vp8"))

    assert "best" not in all_after(args, "-deadline")
    assert int(after(args, "-cpu-used")) > 0
    assert "-movflags" not in args
    assert "-preset" not in args


def test_metadata_and_chapters_of_the_upload_are_dropped():
    args = command(plan())

    assert after(args, "-map_metadata") == "-1"
    assert after(args, "-map_chapters") == "-1"


@pytest.mark.parametrize(
    ("name", "codec", "bitrate"), [("480p-h264", "aac", "128k"), ("480p-vp8", "libopus", "96k")]
)
def test_chosen_audio_stream_is_mapped_and_encoded_in_stereo(name, codec, bitrate):
    args = command(plan(name, audio_index=3))

    video_map, audio_map = all_after(args, "-map")
    assert video_map.startswith("[") and audio_map == "0:3"
    assert after(args, "-c:a") == codec
    assert after(args, "-b:a") == bitrate
    assert after(args, "-ac") == "2"


def test_source_without_audio_maps_only_the_filtered_video():
    args = command(plan(audio_index=None))

    [video_map] = all_after(args, "-map")
    assert video_map.startswith("[")
    assert "-c:a" not in args
    assert "-b:a" not in args


def test_chosen_video_stream_feeds_the_filter_graph():
    args = command(plan(index=2))

    assert after(args, "-filter_complex").startswith("[0:2]")


def test_progressive_sdr_source_gets_rate_scale_square_pixels_and_8bit_420():
    args = command(plan("480p-h264"))

    graph = after(args, "-filter_complex")
    assert filters(args) == ["fps", "scale", "setsar", "format"]
    assert "fps=fps=25/1" in graph
    assert "scale=854:480:flags=bicubic" in graph
    assert "setsar=1" in graph
    assert graph.endswith("format=yuv420p[s3]")


def test_capped_frame_rate_reaches_the_fps_filter():
    args = command(plan(frame_rate="120/1"))

    assert "fps=fps=60/1" in after(args, "-filter_complex")
    assert after(args, "-g") == "120"


def test_interlaced_source_is_deinterlaced_before_anything_else():
    args = command(plan(field_order="tt"))

    assert filters(args) == ["bwdif", "fps", "scale", "setsar", "format"]
    assert "bwdif=deint=interlaced:mode=send_frame:parity=auto" in after(args, "-filter_complex")


@pytest.mark.parametrize("transfer", ["smpte2084", "arib-std-b67"])
def test_hdr_source_is_tonemapped_after_scaling_and_before_8bit_format(transfer):
    args = command(plan(color_transfer=transfer))

    assert filters(args) == [
        "fps",
        "scale",
        "setsar",
        "zscale",
        "format",
        "zscale",
        "tonemap",
        "zscale",
        "format",
    ]
    graph = after(args, "-filter_complex")
    assert "tonemap=desat=0:tonemap=hable" in graph
    assert "zscale=m=bt709:r=tv:t=bt709" in graph
    assert graph.endswith("format=yuv420p[s8]")


@pytest.mark.parametrize("transfer", ["bt709", "smpte170m", ""])
def test_sdr_source_is_not_tonemapped(transfer):
    args = command(plan(color_transfer=transfer))

    assert "tonemap" not in after(args, "-filter_complex")
    assert "zscale" not in after(args, "-filter_complex")


def test_poster_seeks_before_input_and_writes_one_rgb_png_frame():
    preview = plan_preview(source_info(), load_profile("web"))

    args = poster_command(preview, SOURCE, OUTPUT, threads=2)

    i = args.index("-i")
    assert args.index("-protocol_whitelist") < i
    assert args.index("-ss") < i
    assert float(after(args, "-ss")) == preview.position
    assert after(args, "-frames:v") == "1"
    assert after(args, "-c:v") == "png"
    assert after(args, "-filter_complex").endswith("format=rgb24[s2]")
    assert "-progress" not in args
