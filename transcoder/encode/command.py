"""Pure functions from a plan to an ffmpeg argument list (built with ffmpeg-python).

Nothing here runs a process, so the lists can be tested as lists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ffmpeg

from transcoder.media.inputs import safe_input_options
from transcoder.profiles.plan import Picture, PreviewPlan, RenditionPlan

# HDR (PQ or HLG) to 8-bit SDR BT.709: linearise, map with a filmic curve, re-encode.
TONEMAP_CHAIN = [
    ("zscale", {"t": "linear", "npl": "100"}),
    ("format", {"pix_fmts": "gbrpf32le"}),
    ("zscale", {"p": "bt709"}),
    ("tonemap", {"tonemap": "hable", "desat": "0"}),
    ("zscale", {"t": "bt709", "m": "bt709", "r": "tv"}),
]
GLOBAL_ARGS = ["-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning"]


def rendition_command(
    plan: RenditionPlan, source: Path, output: Path, *, threads: int, ffmpeg_bin: str = "ffmpeg"
) -> list[str]:
    """The full ffmpeg command for one rendition, reporting progress on stdout."""
    source_in = _input(source, threads, plan.picture.decoder)
    video = _picture_filters(source_in[str(plan.picture.video_index)], plan.picture, plan.fps)
    streams = [video]
    if plan.audio_index is not None:
        streams.append(source_in[str(plan.audio_index)])

    fmt = plan.format
    options: dict[str, Any] = {
        "c:v": fmt.video_codec,
        "pix_fmt": "yuv420p",
        "g": plan.keyframe_interval,
        "threads": threads,
        "map_metadata": -1,
        "map_chapters": -1,
        "f": fmt.container,
    }
    options |= _video_codec_options(plan)
    if plan.audio_index is not None:
        options |= {
            "c:a": fmt.audio_codec,
            "b:a": f"{fmt.audio_kbps}k",
            "ac": fmt.audio_channels,
        }
    if fmt.container == "mp4":
        options["movflags"] = "+faststart"

    out = ffmpeg.output(*streams, f"file:{output}", **options).overwrite_output()
    progress = ["-progress", "pipe:1", "-filter_complex_threads", str(threads)]
    return [ffmpeg_bin, *GLOBAL_ARGS, *progress, *out.get_args()]


def poster_command(
    plan: PreviewPlan, source: Path, output: Path, *, threads: int, ffmpeg_bin: str = "ffmpeg"
) -> list[str]:
    """ffmpeg command writing the frame at the plan's position as a PNG (fast seek).

    Pillow turns the PNG into the JPEG poster and thumbnails.
    """
    source_in = _input(source, threads, plan.picture.decoder, ss=plan.position)
    stream = source_in[str(plan.picture.video_index)]
    video = _picture_filters(stream, plan.picture, fps=None, pix_fmt="rgb24")
    options = {"frames:v": 1, "f": "image2", "c:v": "png", "update": 1, "threads": threads}
    out = ffmpeg.output(video, f"file:{output}", **options)
    return [ffmpeg_bin, *GLOBAL_ARGS, *out.overwrite_output().get_args()]


def _input(source: Path, threads: int, decoder: str | None, **extra: Any) -> Any:
    if decoder:
        extra["c:v"] = decoder
    return ffmpeg.input(f"file:{source}", threads=threads, **safe_input_options(), **extra)


def _picture_filters(
    stream: Any, picture: Picture, fps: str | None, pix_fmt: str = "yuv420p"
) -> Any:
    """Deinterlace, fix the frame rate, flatten transparency onto black, scale to square
    pixels, tone-map, and end in 8-bit 4:2:0 (or RGB for the poster).

    ffmpeg applies the display rotation before this chain (autorotate), so the sizes here
    are already the upright ones.
    """
    if picture.deinterlace:
        stream = stream.filter("bwdif", mode="send_frame", parity="auto", deint="interlaced")
    if fps:
        stream = stream.filter("fps", fps=fps)
    if picture.flatten_alpha:
        stream = stream.filter("format", "yuva444p").filter("premultiply", inplace=1)
    stream = stream.filter("scale", picture.width, picture.height, flags="bicubic")
    stream = stream.filter("setsar", "1")
    if picture.tonemap:
        for name, kwargs in TONEMAP_CHAIN:
            stream = stream.filter(name, **kwargs)
    return stream.filter("format", pix_fmt)


def _video_codec_options(plan: RenditionPlan) -> dict[str, Any]:
    fmt, kbps = plan.format, plan.video_kbps
    if fmt.video_codec == "libx264":
        return {
            "preset": fmt.preset,
            "profile:v": fmt.h264_profile,
            "crf": fmt.crf,
            "maxrate": f"{kbps}k",
            "bufsize": f"{kbps * 2}k",
        }
    # libvpx: constrained quality, capped at the rung's rate; "good" with a speed setting
    # rather than the encoder's slowest default.
    return {
        "deadline": "good",
        "cpu-used": fmt.speed,
        "crf": fmt.crf,
        "b:v": f"{kbps}k",
        "maxrate": f"{kbps}k",
        "bufsize": f"{kbps * 2}k",
        "auto-alt-ref": 0,
    }
