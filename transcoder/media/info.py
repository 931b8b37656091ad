"""Typed facts about a source, as far as the farm trusts them."""

from __future__ import annotations

from fractions import Fraction

from pydantic import BaseModel

HDR_TRANSFERS = frozenset({"smpte2084", "arib-std-b67"})


class VideoStream(BaseModel):
    """The one video stream a source is transcoded from."""

    index: int
    codec: str
    width: int
    height: int
    sar: str = "1:1"
    rotation: int = 0
    frame_rate: str = "0/1"
    avg_frame_rate: str = "0/1"
    variable_frame_rate: bool = False
    pix_fmt: str = ""
    bit_depth: int = 8
    has_alpha: bool = False
    color_transfer: str = ""
    field_order: str = ""
    frames: int | None = None
    duration: float | None = None

    @property
    def display_width(self) -> float:
        """Width as shown, after sample aspect ratio and rotation."""
        w, h = self._unrotated_display()
        return h if self.rotation % 180 else w

    @property
    def display_height(self) -> float:
        w, h = self._unrotated_display()
        return w if self.rotation % 180 else h

    def _unrotated_display(self) -> tuple[float, float]:
        return self.width * float(parse_ratio(self.sar, Fraction(1))), float(self.height)

    @property
    def fps(self) -> Fraction:
        """Best guess at the frame rate: the average rate, else the nominal one."""
        avg = parse_ratio(self.avg_frame_rate, Fraction(0))
        nominal = parse_ratio(self.frame_rate, Fraction(0))
        if self.variable_frame_rate or not nominal:
            return avg or nominal
        return nominal

    @property
    def is_hdr(self) -> bool:
        return self.color_transfer in HDR_TRANSFERS

    @property
    def is_interlaced(self) -> bool:
        return self.field_order in {"tt", "bb", "tb", "bt"}


class AudioStream(BaseModel):
    """An audio stream of the source."""

    index: int
    codec: str
    channels: int
    sample_rate: int
    default: bool = False
    duration: float | None = None


class MediaInfo(BaseModel):
    """What ffprobe told us about a source: container, duration and the usable streams."""

    container: str
    duration: float
    start_time: float = 0.0
    size: int = 0
    bit_rate: int | None = None
    video: VideoStream | None = None
    audio: list[AudioStream] = []

    @property
    def main_audio(self) -> AudioStream | None:
        """The track renditions carry: the one flagged default, else the first."""
        for stream in self.audio:
            if stream.default:
                return stream
        return self.audio[0] if self.audio else None

    @property
    def media_duration(self) -> float:
        """How long the streams renditions carry last: the video and the main audio.

        The container's duration can be longer, e.g. when a subtitle track runs past the
        picture, so outputs are checked against this instead.
        """
        known = [s.duration for s in (self.video, self.main_audio) if s and s.duration]
        return max(known) if known else self.duration

    def summary(self) -> str:
        """One line for logs and tables."""
        parts = [self.container, f"{self.duration:.2f}s"]
        if self.video:
            v = self.video
            parts.append(f"{v.codec} {v.width}x{v.height} {float(v.fps):.3g}fps {v.pix_fmt}")
        for a in self.audio:
            parts.append(f"{a.codec} {a.channels}ch {a.sample_rate}Hz")
        return ", ".join(parts)


def parse_ratio(text: str | None, default: Fraction) -> Fraction:
    """Parse '30000/1001' or '64:45'; return `default` for missing or zero denominators."""
    if not text:
        return default
    sep = "/" if "/" in text else ":"
    num, _, den = text.partition(sep)
    try:
        n, d = int(num), int(den or 1)
    except ValueError:
        return default
    if d == 0 or n <= 0:
        return default
    return Fraction(n, d)
