"""The public view of a video: what the API returns and what webhooks carry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session

from transcoder.db import records
from transcoder.db.models import Preview, Rendition, TaskStatus, Video, VideoStatus


class RenditionView(BaseModel):
    id: str
    name: str
    status: TaskStatus
    progress: float
    eta_seconds: float | None
    width: int
    height: int
    container: str
    video_codec: str
    audio_codec: str | None
    max_kbps: int
    measured_kbps: int | None
    size_bytes: int | None
    duration: float | None
    url: str | None
    error: str | None


class ImageView(BaseModel):
    kind: str
    width: int
    height: int
    url: str


class PreviewView(BaseModel):
    status: TaskStatus
    images: list[ImageView]
    error: str | None


class VideoView(BaseModel):
    id: str
    status: VideoStatus
    source_name: str
    source_url: str | None
    profile: str
    progress: float
    eta_seconds: float | None
    error: str | None
    media: dict[str, Any] | None
    renditions: list[RenditionView]
    preview: PreviewView | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


def video_view(session: Session, video: Video, link: Callable[[str], str]) -> VideoView:
    """Build the public view; `link` turns a storage key into a download URL."""
    renditions = records.renditions_of(session, video.id)
    preview = records.preview_of(session, video.id)
    return VideoView(
        id=video.id,
        status=video.status,
        source_name=video.source_name,
        source_url=video.source_url,
        profile=video.profile,
        progress=video.progress,
        eta_seconds=(
            eta(video.started_at, video.progress) if video.status == VideoStatus.ENCODING else None
        ),
        error=video.error,
        media=_media(video.probe),
        renditions=[_rendition(r, link) for r in renditions],
        preview=_preview(preview, link) if preview else None,
        created_at=video.created_at,
        updated_at=video.updated_at,
        finished_at=video.finished_at,
    )


ETA_MIN_PROGRESS = 0.05


def eta(started: datetime | None, progress: float) -> float | None:
    """Seconds left, extrapolated from the time taken so far (none until 5% is done, when
    start-up costs would make the guess wild)."""
    if started is None or not ETA_MIN_PROGRESS <= progress < 1:
        return None
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    elapsed = (datetime.now(UTC) - started).total_seconds()
    return round(max(0.0, elapsed * (1 - progress) / progress), 1)


def _rendition(r: Rendition, link: Callable[[str], str]) -> RenditionView:
    done = r.status == TaskStatus.SUCCEEDED and r.storage_key
    return RenditionView(
        id=r.id,
        name=r.name,
        status=r.status,
        progress=1.0 if r.status == TaskStatus.SUCCEEDED else r.progress,
        eta_seconds=eta(r.started_at, r.progress) if r.status == TaskStatus.RUNNING else None,
        width=r.width,
        height=r.height,
        container=r.container,
        video_codec=r.video_codec,
        audio_codec=r.audio_codec,
        max_kbps=r.bitrate_kbps,
        measured_kbps=r.measured_kbps,
        size_bytes=r.size_bytes,
        duration=r.duration,
        url=link(r.storage_key) if done and r.storage_key else None,
        error=r.error,
    )


def _preview(p: Preview, link: Callable[[str], str]) -> PreviewView:
    return PreviewView(
        status=p.status,
        images=[
            ImageView(kind=i["kind"], width=i["width"], height=i["height"], url=link(i["key"]))
            for i in p.images or []
        ],
        error=p.error,
    )


def _media(probe: dict[str, Any] | None) -> dict[str, Any] | None:
    """The probe summary clients may rely on."""
    if not probe:
        return None
    video = probe.get("video") or {}
    return {
        "container": probe.get("container"),
        "duration": probe.get("duration"),
        "width": video.get("width"),
        "height": video.get("height"),
        "video_codec": video.get("codec"),
        "frame_rate": video.get("avg_frame_rate") or video.get("frame_rate"),
        "audio_tracks": len(probe.get("audio") or []),
    }
