"""Decide, for one probed source and one profile, exactly which outputs to make.

Rules: never upscale (a source below every rung gets one rendition at its own size), keep
the display aspect (sample aspect ratio and rotation applied, square pixels out), even
width and height, a constant frame rate no higher than the profile's cap, 8-bit 4:2:0, and
audio only when the source has some.
"""

from __future__ import annotations

from fractions import Fraction

from pydantic import BaseModel

from transcoder.media.info import MediaInfo, VideoStream
from transcoder.profiles.models import OutputFormat, PreviewSpec, Profile, Rung

# Rates a variable-frame-rate source is snapped up to, so outputs get a familiar clock.
STANDARD_RATES = [Fraction(r) for r in ("24000/1001", "24", "25", "30000/1001", "30", "50")] + [
    Fraction(60000, 1001),
    Fraction(60),
]
FALLBACK_RATE = Fraction(30)
# ffmpeg's native VP8/VP9 decoders drop the alpha channel WebM stores beside the picture.
ALPHA_DECODERS = {"vp8": "libvpx", "vp9": "libvpx-vp9"}


class Picture(BaseModel):
    """How to turn the source's frames into upright, square-pixel, 8-bit SDR frames."""

    video_index: int
    width: int
    height: int
    deinterlace: bool = False
    tonemap: bool = False
    flatten_alpha: bool = False
    decoder: str | None = None


class RenditionPlan(BaseModel):
    """Everything the encode job needs to make one rendition, fixed at planning time."""

    name: str
    rung: str
    format: OutputFormat
    picture: Picture
    fps: str
    keyframe_interval: int
    video_kbps: int
    audio_index: int | None
    duration: float

    @property
    def filename(self) -> str:
        return f"{self.name}.{self.format.extension}"

    @property
    def width(self) -> int:
        return self.picture.width

    @property
    def height(self) -> int:
        return self.picture.height


class PreviewPlan(BaseModel):
    """Where to take the poster frame and what to make from it."""

    picture: Picture
    position: float
    spec: PreviewSpec


def plan_renditions(info: MediaInfo, profile: Profile) -> list[RenditionPlan]:
    """One plan per (rung, format) the source deserves, largest rung first."""
    video = _require_video(info)
    fps = output_frame_rate(video, profile.max_fps)
    keyint = max(1, round(fps * Fraction(str(profile.keyframe_seconds))))
    audio = info.main_audio

    plans = []
    for rung, width, height in _sizes(video, profile):
        picture = _picture(video, width, height)
        for fmt in profile.formats:
            plans.append(
                RenditionPlan(
                    name=f"{rung.name}-{fmt.name}",
                    rung=rung.name,
                    format=fmt,
                    picture=picture,
                    fps=f"{fps.numerator}/{fps.denominator}",
                    keyframe_interval=keyint,
                    video_kbps=rung.max_kbps[fmt.name],
                    audio_index=audio.index if audio else None,
                    duration=info.media_duration,
                )
            )
    return plans


def plan_preview(info: MediaInfo, profile: Profile) -> PreviewPlan:
    """The poster: display aspect, long side at most `poster_max`, about 10% in."""
    video = _require_video(info)
    dw, dh = video.display_width, video.display_height
    scale = min(1.0, profile.preview.poster_max / max(dw, dh))
    picture = _picture(video, even_floor(dw * scale), even_floor(dh * scale))
    return PreviewPlan(
        picture=picture,
        position=poster_position(info.media_duration, video.fps, profile.preview.position),
        spec=profile.preview,
    )


def poster_position(duration: float, fps: Fraction, fraction: float) -> float:
    """A timestamp inside the clip, so very short clips still give a frame."""
    frame = float(1 / fps) if fps else 1 / 30
    latest = max(0.0, duration - 2 * frame)
    return round(min(duration * fraction, latest), 3)


def output_frame_rate(video: VideoStream, cap: int) -> Fraction:
    """A constant output rate: the source's, snapped to a standard one if variable, capped."""
    rate = video.fps or FALLBACK_RATE
    if video.variable_frame_rate:
        rate = next(
            (r for r in STANDARD_RATES if r >= rate * Fraction(97, 100)), STANDARD_RATES[-1]
        )
    divisor = 1
    while rate / divisor > cap:
        divisor += 1
    return rate / divisor


def even(value: float) -> int:
    """Nearest even integer, at least 2 (4:2:0 needs even sizes)."""
    return max(2, round(value / 2) * 2)


def even_floor(value: float) -> int:
    """Largest even integer not above value, at least 2."""
    return max(2, int(value) // 2 * 2)


def _sizes(video: VideoStream, profile: Profile) -> list[tuple[Rung, int, int]]:
    dw, dh = video.display_width, video.display_height
    short = min(dw, dh)
    fitting = [r for r in profile.rungs_by_size if r.size <= short]
    if not fitting:
        smallest = profile.rungs_by_size[-1]
        # At its own size a source may lose a pixel to even sizes, never gain one.
        width, height = even_floor(dw), even_floor(dh)
        own = Rung(size=min(width, height), max_kbps=smallest.max_kbps)
        return [(own, width, height)]
    sizes = []
    for rung in fitting:
        scale = rung.size / short
        sizes.append((rung, even(dw * scale), even(dh * scale)))
    return sizes


def _picture(video: VideoStream, width: int, height: int) -> Picture:
    return Picture(
        video_index=video.index,
        width=width,
        height=height,
        deinterlace=video.is_interlaced,
        tonemap=video.is_hdr,
        flatten_alpha=video.has_alpha,
        decoder=ALPHA_DECODERS.get(video.codec) if video.has_alpha else None,
    )


def _require_video(info: MediaInfo) -> VideoStream:
    if info.video is None:
        raise ValueError("planning needs a video stream; check_limits refuses sources without one")
    return info.video
