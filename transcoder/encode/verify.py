"""Check a finished rendition against its plan before it counts."""

from __future__ import annotations

from pathlib import Path

from transcoder.errors import InputError, VerifyError
from transcoder.media.info import MediaInfo
from transcoder.media.probe import probe
from transcoder.profiles.plan import RenditionPlan

DURATION_TOLERANCE = 0.2


def verify_rendition(output: Path, plan: RenditionPlan, *, ffprobe: str = "ffprobe") -> MediaInfo:
    """Probe the output; raise VerifyError naming the first thing that differs from the plan."""
    try:
        info = probe(output, ffprobe)
    except InputError as exc:
        raise VerifyError(f"output is not readable: {exc.reason}", detail=exc.detail) from exc

    fmt = plan.format
    video = info.video
    if video is None:
        raise VerifyError("output has no video stream")
    if video.codec != fmt.video_codec_name:
        raise VerifyError(f"output video codec is {video.codec}, expected {fmt.video_codec_name}")
    if (video.width, video.height) != (plan.width, plan.height):
        raise VerifyError(
            f"output is {video.width}x{video.height}, expected {plan.width}x{plan.height}"
        )
    if video.pix_fmt != "yuv420p" or video.rotation:
        raise VerifyError(
            f"output is {video.pix_fmt} rotated {video.rotation}, expected upright yuv420p"
        )

    audio = info.main_audio
    if plan.audio_index is None and audio is not None:
        raise VerifyError("output has an audio track but none was planned")
    if plan.audio_index is not None:
        if audio is None:
            raise VerifyError("output has no audio track")
        if audio.codec != fmt.audio_codec_name:
            raise VerifyError(
                f"output audio codec is {audio.codec}, expected {fmt.audio_codec_name}"
            )

    if abs(info.duration - plan.duration) > DURATION_TOLERANCE:
        raise VerifyError(
            f"output lasts {info.duration:.1f} s but the source lasts {plan.duration:.1f} s; "
            "the source may be truncated or damaged"
        )
    return info
