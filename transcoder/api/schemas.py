"""Request and response bodies that are not the video view itself."""

from __future__ import annotations

from pydantic import BaseModel, Field

from transcoder.views import VideoView


class VideoFromURL(BaseModel):
    """Import a video by link: the farm fetches it (public addresses only)."""

    url: str = Field(max_length=4096, examples=["https://media.example.com/clip.mp4"])
    profile: str | None = Field(None, examples=["web"])
    callback_url: str | None = Field(None, max_length=4096)


class VideoPage(BaseModel):
    items: list[VideoView]
    total: int
    limit: int
    offset: int


class RungView(BaseModel):
    size: int
    max_kbps: dict[str, int]


class FormatView(BaseModel):
    name: str
    container: str
    video_codec: str
    audio_codec: str


class ProfileView(BaseModel):
    name: str
    max_fps: int
    formats: list[FormatView]
    rungs: list[RungView]
