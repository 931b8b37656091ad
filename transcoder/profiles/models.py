"""The profile schema: a ladder of rungs, the output formats made at each, and the preview.

A profile is data (a TOML file). It is validated into these models when loaded, so a typo
or a wrong type fails at start-up with the name of the field, not halfway through a job.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

VIDEO_CODECS = {"libx264": "h264", "libvpx": "vp8"}
AUDIO_CODECS = {"aac": "aac", "libopus": "opus", "libvorbis": "vorbis"}
CONTAINERS = {"mp4": ("libx264", ("aac",)), "webm": ("libvpx", ("libopus", "libvorbis"))}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OutputFormat(_Strict):
    """One codec pair in one container, made at every rung."""

    name: str = Field(pattern=r"^[a-z0-9]+$")
    container: Literal["mp4", "webm"]
    video_codec: Literal["libx264", "libvpx"]
    audio_codec: Literal["aac", "libopus", "libvorbis"]
    audio_kbps: int = Field(128, ge=16, le=512)
    audio_channels: int = Field(2, ge=1, le=2)
    crf: int = Field(23, ge=0, le=63)
    preset: str = "veryfast"
    h264_profile: Literal["baseline", "main", "high"] = "high"
    speed: int = Field(4, ge=0, le=16)

    @model_validator(mode="after")
    def _codecs_fit_container(self) -> OutputFormat:
        video, audios = CONTAINERS[self.container]
        if self.video_codec != video:
            raise ValueError(f"video_codec {self.video_codec} cannot go in {self.container}")
        if self.audio_codec not in audios:
            raise ValueError(f"audio_codec {self.audio_codec} cannot go in {self.container}")
        if self.video_codec == "libx264" and self.crf > 51:
            raise ValueError(f"crf {self.crf} is out of libx264's range 0-51")
        return self

    @property
    def extension(self) -> str:
        return self.container

    @property
    def video_codec_name(self) -> str:
        """The codec name ffprobe reports for this format's video."""
        return VIDEO_CODECS[self.video_codec]

    @property
    def audio_codec_name(self) -> str:
        return AUDIO_CODECS[self.audio_codec]


class Rung(_Strict):
    """One step of the ladder: a short-side size and a bitrate cap per format."""

    size: int = Field(gt=0, le=4320, multiple_of=2)
    max_kbps: dict[str, int]

    @property
    def name(self) -> str:
        return f"{self.size}p"


class PreviewSpec(_Strict):
    """The poster and the thumbnails made from it."""

    poster_max: int = Field(1280, ge=16, le=4096)
    thumbnails: list[int] = Field(default_factory=lambda: [480, 160], min_length=1)
    quality: int = Field(85, ge=1, le=95)
    position: float = Field(0.1, ge=0, le=0.9)


class Profile(_Strict):
    """A complete ladder. See web.toml beside this module for the default one."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    max_fps: int = Field(60, ge=1, le=240)
    keyframe_seconds: float = Field(2, gt=0, le=20)
    formats: list[OutputFormat] = Field(min_length=1)
    rungs: list[Rung] = Field(min_length=1)
    preview: PreviewSpec = PreviewSpec()

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        names = [f.name for f in self.formats]
        if len(set(names)) != len(names):
            raise ValueError("format names must be unique")
        sizes = [r.size for r in self.rungs]
        if len(set(sizes)) != len(sizes):
            raise ValueError("rung sizes must be unique")
        for rung in self.rungs:
            missing = set(names) - set(rung.max_kbps)
            unknown = set(rung.max_kbps) - set(names)
            if missing or unknown:
                raise ValueError(
                    f"rung {rung.size}: max_kbps must name exactly the formats {sorted(names)}"
                )
        return self

    @property
    def rungs_by_size(self) -> list[Rung]:
        """Rungs from the largest down."""
        return sorted(self.rungs, key=lambda r: r.size, reverse=True)
