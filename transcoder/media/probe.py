"""Run ffprobe on a source and turn its JSON into MediaInfo, checking the farm's limits."""

from __future__ import annotations

import json
import logging
import math
import re
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

from ffmpeg._utils import convert_kwargs_to_cmd_line_args

from transcoder.errors import InputError, ProbeError
from transcoder.media.info import AudioStream, MediaInfo, VideoStream, parse_ratio
from transcoder.media.inputs import safe_input_options

log = logging.getLogger("transcoder.probe")

PROBE_TIMEOUT = 60
TAIL_SECONDS = 60
MAX_DISPLAY_ASPECT = 10
SPARSE_CHECK_SECONDS = 600
MAX_SECONDS_PER_FRAME = 60
_DEPTH = re.compile(r"p(9|10|12|14|16)(le|be)?$")
_ALPHA_PREFIXES = ("yuva", "rgba", "bgra", "argb", "abgr", "gbrap", "ya")


def probe_command(path: Path, ffprobe: str = "ffprobe") -> list[str]:
    """The ffprobe argument list for one local file, confined to local media demuxers."""
    options = {"v": "error", "show_format": None, "show_streams": None, "of": "json"}
    options |= safe_input_options()
    return [ffprobe, *convert_kwargs_to_cmd_line_args(options), "-i", f"file:{path}"]


def probe(path: Path, ffprobe: str = "ffprobe") -> MediaInfo:
    """Describe a local media file; raise InputError when it is not usable media."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"source file is missing: {path.name}")
    if path.stat().st_size == 0:
        raise InputError("the file is empty (0 bytes)")

    try:
        done = subprocess.run(
            probe_command(path, ffprobe), capture_output=True, timeout=PROBE_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ProbeError(f"ffprobe did not finish within {PROBE_TIMEOUT} s") from exc
    stderr = done.stderr.decode("utf-8", "replace").strip()
    if done.returncode != 0:
        raise ProbeError(_probe_reason(stderr, _looks_like_mp4(path)), detail=stderr[-4000:])

    info = media_info_from_probe(json.loads(done.stdout or b"{}"))
    carried = [st for st in (info.video, info.main_audio) if st is not None]
    if any(st.duration is None for st in carried):
        info = _with_measured_durations(path, ffprobe, info)
    if info.video and info.video.frames is None and info.media_duration > SPARSE_CHECK_SECONDS:
        info = _with_counted_frames(path, ffprobe, info)
    return info


def _with_counted_frames(path: Path, ffprobe: str, info: MediaInfo) -> MediaInfo:
    """Count the video packets (demux only) of a long source whose container has no count."""
    assert info.video is not None
    options = {"v": "error", "count_packets": None, "select_streams": str(info.video.index)}
    options |= {"show_entries": "stream=nb_read_packets", "of": "csv=p=0"} | safe_input_options()
    args = [ffprobe, *convert_kwargs_to_cmd_line_args(options), "-i", f"file:{path}"]
    try:
        done = subprocess.run(args, capture_output=True, timeout=PROBE_TIMEOUT * 5, check=False)
    except subprocess.TimeoutExpired:
        return info
    count = done.stdout.decode().strip().split(",")[0]
    if not count.isdigit():
        return info
    video = info.video.model_copy(update={"frames": int(count)})
    return info.model_copy(update={"video": video})


def _with_measured_durations(path: Path, ffprobe: str, info: MediaInfo) -> MediaInfo:
    """Fill in stream durations from the last packets of each stream.

    Containers such as Matroska state stream durations only in tags that muxers write, and
    some write them wrong (a real WebM says 8.4 s while its packets run to 17.6 s), so the
    packets near the end are read instead. Demuxing only: nothing is decoded.
    """
    start = max(0.0, info.duration - TAIL_SECONDS)
    options = {"v": "error", "show_entries": "packet=stream_index,pts_time,duration_time"}
    options |= {"read_intervals": f"{start:.3f}%", "of": "csv=p=0"} | safe_input_options()
    args = [ffprobe, *convert_kwargs_to_cmd_line_args(options), "-i", f"file:{path}"]
    try:
        done = subprocess.run(args, capture_output=True, timeout=PROBE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return info
    ends: dict[int, float] = {}
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        index, pts, duration = [*line.split(","), "", ""][:3]
        if index.isdigit() and _number(pts) is not None:
            end = (_number(pts) or 0.0) + (_number(duration) or 0.0)
            ends[int(index)] = max(ends.get(int(index), 0.0), end)

    def measured(stream: Any) -> Any:
        if stream is None or stream.duration is not None or stream.index not in ends:
            return stream
        return stream.model_copy(update={"duration": ends[stream.index] - info.start_time})

    return info.model_copy(
        update={"video": measured(info.video), "audio": [measured(a) for a in info.audio]}
    )


def _looks_like_mp4(path: Path) -> bool:
    """True when the file starts with an MP4/QuickTime `ftyp` box."""
    with path.open("rb") as f:
        return f.read(12)[4:8] == b"ftyp"


def _probe_reason(stderr: str, mp4: bool) -> str:
    last = stderr.splitlines()[-1] if stderr else "no output"
    # ffprobe follows "moov atom not found" with "Invalid data found", so test it first; but
    # any file named .mp4 gets the moov complaint, so only real MP4 headers count.
    if "moov atom not found" in stderr and mp4:
        return "could not decode the file: the MP4 index is missing (truncated upload?)"
    if "Invalid data found" in stderr:
        return "could not decode the file: not a recognised audio/video format or damaged"
    if "not on whitelist" in stderr or "Unable to find a suitable output format" in stderr:
        return "refused: the file is not a supported media container"
    return f"could not decode the file: {last.split(': ', 1)[-1]}"


def media_info_from_probe(data: dict[str, Any]) -> MediaInfo:
    """Build MediaInfo from ffprobe's -show_format -show_streams JSON."""
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    video = _pick_video(streams)
    audio = [_audio(s) for s in streams if s.get("codec_type") == "audio" and s.get("channels")]
    duration = _number(fmt.get("duration"))
    if duration is None:
        durations = [_number(s.get("duration")) for s in streams]
        duration = max((d for d in durations if d is not None), default=None)
    if duration is None or duration <= 0:
        raise ProbeError("could not determine the duration of the file")
    return MediaInfo(
        container=fmt.get("format_name", ""),
        duration=duration,
        start_time=_number(fmt.get("start_time")) or 0.0,
        size=int(fmt.get("size") or 0),
        bit_rate=int(fmt["bit_rate"]) if str(fmt.get("bit_rate", "")).isdigit() else None,
        video=video,
        audio=audio,
    )


def check_limits(info: MediaInfo, *, max_pixels: int, max_duration: float) -> None:
    """Refuse, before any decoding, sources the farm will not transcode."""
    if info.video is None:
        kind = "audio only" if info.audio else "no audio either"
        raise InputError(f"no video stream ({kind})")
    video = info.video
    if video.width * video.height > max_pixels:
        raise InputError(
            f"frame size {video.width}x{video.height} is over the limit of {max_pixels} pixels"
        )
    # The display size drives the plan, so a crafted sample aspect ratio must not turn a
    # small frame into a huge or absurdly thin one.
    shown_w, shown_h = video.display_width, video.display_height
    if max(shown_w / shown_h, shown_h / shown_w) > MAX_DISPLAY_ASPECT:
        raise InputError(
            f"display size {shown_w:.0f}x{shown_h:.0f} (sample aspect ratio {video.sar}) "
            f"is more than {MAX_DISPLAY_ASPECT}:1"
        )
    if shown_w * shown_h > max_pixels:
        raise InputError(
            f"display size {shown_w:.0f}x{shown_h:.0f} is over the limit of {max_pixels} pixels"
        )
    if info.duration > max_duration:
        raise InputError(f"duration {info.duration:.1f} s is over the limit of {max_duration:g} s")
    # A few frames whose timestamps span hours would make every rendition hours of repeated
    # frames: a tiny upload costing hours of CPU. Real slideshows show a frame every few
    # seconds, not every minute.
    span, frames = info.media_duration, video.frames
    if frames and span > SPARSE_CHECK_SECONDS and span / frames > MAX_SECONDS_PER_FRAME:
        raise InputError(
            f"the timestamps span {span:.0f} s but the video holds only {frames} frames "
            f"(one every {span / frames:.0f} s); refusing to fill the gaps with repeated frames"
        )


def _pick_video(streams: list[dict[str, Any]]) -> VideoStream | None:
    """The first real video stream, preferring the default one; cover art is not video."""
    candidates = [
        s
        for s in streams
        if s.get("codec_type") == "video"
        and not (s.get("disposition") or {}).get("attached_pic")
        and s.get("width")
        and s.get("height")
    ]
    if not candidates:
        return None
    chosen = next((s for s in candidates if (s.get("disposition") or {}).get("default")), None)
    return _video(chosen or candidates[0])


def _video(s: dict[str, Any]) -> VideoStream:
    pix_fmt = s.get("pix_fmt") or ""
    tags = s.get("tags") or {}
    depth = _DEPTH.search(pix_fmt)
    nominal = parse_ratio(s.get("r_frame_rate"), Fraction(0))
    average = parse_ratio(s.get("avg_frame_rate"), Fraction(0))
    variable = bool(nominal and average and abs(nominal - average) / average > 0.01)
    frames = s.get("nb_frames")
    return VideoStream(
        index=int(s["index"]),
        codec=s.get("codec_name", "unknown"),
        width=int(s["width"]),
        height=int(s["height"]),
        sar=s.get("sample_aspect_ratio") or "1:1",
        rotation=_rotation(s),
        frame_rate=s.get("r_frame_rate") or "0/1",
        avg_frame_rate=s.get("avg_frame_rate") or "0/1",
        variable_frame_rate=variable,
        pix_fmt=pix_fmt,
        bit_depth=int(depth.group(1)) if depth else 8,
        has_alpha=pix_fmt.startswith(_ALPHA_PREFIXES) or tags.get("alpha_mode") == "1",
        color_transfer=s.get("color_transfer") or "",
        field_order=s.get("field_order") or "",
        frames=int(str(frames)) if str(frames or "").isdigit() else None,
        duration=_stream_duration(s),
    )


def _audio(s: dict[str, Any]) -> AudioStream:
    return AudioStream(
        index=int(s["index"]),
        codec=s.get("codec_name", "unknown"),
        channels=int(s.get("channels") or 0),
        sample_rate=int(s.get("sample_rate") or 0),
        default=bool((s.get("disposition") or {}).get("default")),
        duration=_stream_duration(s),
    )


def _rotation(s: dict[str, Any]) -> int:
    """Display rotation in degrees, normalised to 0, 90, 180 or 270."""
    values = [side.get("rotation") for side in s.get("side_data_list") or []]
    values.append((s.get("tags") or {}).get("rotate"))
    for value in values:
        degrees = _number(value)
        if degrees is not None:
            return round(degrees / 90) * 90 % 360
    return 0


def _stream_duration(s: dict[str, Any]) -> float | None:
    """The duration the demuxer states for a stream (tags are not trusted)."""
    value = _number(s.get("duration"))
    return value if value is not None and value > 0 else None


def _number(value: Any) -> float | None:
    """A finite float, or None for anything else ffprobe may print (N/A, inf, garbage)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
