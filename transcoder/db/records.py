"""Data access as plain functions taking a session and keyword arguments.

Status changes that decide a video's outcome read the row with SELECT ... FOR UPDATE, so on
PostgreSQL two workers can never both finish the same video (SQLite serialises writers anyway).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, select

from transcoder.db.models import (
    FINAL_VIDEO,
    Preview,
    Rendition,
    TaskStatus,
    Video,
    VideoStatus,
    WebhookDelivery,
    utcnow,
)
from transcoder.errors import NotFound


def create_video(
    session: Session, *, source_name: str, profile: str, profile_spec: dict[str, Any] | None = None
) -> Video:
    video = Video(source_name=source_name[:255], profile=profile, profile_spec=profile_spec)
    session.add(video)
    session.flush()
    return video


def get_video(session: Session, video_id: str, *, lock: bool = False) -> Video:
    query = select(Video).where(Video.id == video_id)
    if lock:
        query = query.with_for_update()
    video = session.exec(query).first()
    if video is None:
        raise NotFound(f"no video with id {video_id}")
    return video


def list_videos(session: Session, *, limit: int = 50) -> Sequence[Video]:
    return session.exec(select(Video).order_by(col(Video.created_at).desc()).limit(limit)).all()


def get_rendition(session: Session, rendition_id: str, *, lock: bool = False) -> Rendition:
    query = select(Rendition).where(Rendition.id == rendition_id)
    if lock:
        query = query.with_for_update()
    rendition = session.exec(query).first()
    if rendition is None:
        raise NotFound(f"no rendition with id {rendition_id}")
    return rendition


def renditions_of(session: Session, video_id: str) -> Sequence[Rendition]:
    query = select(Rendition).where(Rendition.video_id == video_id)
    return session.exec(query.order_by(col(Rendition.height).desc(), col(Rendition.name))).all()


def preview_of(session: Session, video_id: str, *, lock: bool = False) -> Preview | None:
    query = select(Preview).where(Preview.video_id == video_id)
    if lock:
        query = query.with_for_update()
    return session.exec(query).first()


def set_video_status(
    video: Video, status: VideoStatus, *, error: str | None = None, detail: str | None = None
) -> None:
    video.status = status
    video.updated_at = utcnow()
    if status == VideoStatus.ENCODING and video.started_at is None:
        video.started_at = video.updated_at
    if status in FINAL_VIDEO:
        video.finished_at = video.updated_at
    if status == VideoStatus.SUCCEEDED:
        video.progress = 1.0
    video.error = error
    video.error_detail = detail


def add_renditions(session: Session, *, video_id: str, plans: Sequence[Any]) -> list[Rendition]:
    """Create a rendition row per plan (a RenditionPlan)."""
    rows = []
    for plan in plans:
        fmt = plan.format
        row = Rendition(
            video_id=video_id,
            name=plan.name,
            rung=plan.rung,
            video_codec=fmt.video_codec_name,
            audio_codec=fmt.audio_codec_name if plan.audio_index is not None else None,
            container=fmt.container,
            width=plan.width,
            height=plan.height,
            bitrate_kbps=plan.video_kbps,
            plan=plan.model_dump(mode="json"),
        )
        session.add(row)
        rows.append(row)
    session.flush()
    return rows


def add_preview(session: Session, *, video_id: str, plan: Any) -> Preview:
    row = Preview(video_id=video_id, plan=plan.model_dump(mode="json"))
    session.add(row)
    session.flush()
    return row


def weighted_progress(renditions: Sequence[Rendition]) -> float:
    """Progress of a whole video: its renditions' progress weighted by their pixel counts."""
    total = sum(r.width * r.height for r in renditions)
    if not total:
        return 0.0
    done = sum(
        r.width * r.height * (1.0 if r.status == TaskStatus.SUCCEEDED else r.progress)
        for r in renditions
    )
    return round(done / total, 4)


def get_preview(session: Session, preview_id: str, *, lock: bool = False) -> Preview:
    query = select(Preview).where(Preview.id == preview_id)
    if lock:
        query = query.with_for_update()
    preview = session.exec(query).first()
    if preview is None:
        raise NotFound(f"no preview with id {preview_id}")
    return preview


def get_task(session: Session, task_id: str, *, lock: bool = False) -> Rendition | Preview:
    """A rendition or a preview, by id (the two kinds of job a video fans out to)."""
    try:
        return get_rendition(session, task_id, lock=lock)
    except NotFound:
        return get_preview(session, task_id, lock=lock)


def create_webhook_delivery(
    session: Session, *, video_id: str, event: str, url: str, data: dict[str, Any]
) -> WebhookDelivery:
    """A pending delivery whose body is `data` under the delivery's id, event and time."""
    delivery = WebhookDelivery(video_id=video_id, event=event, url=url)
    delivery.payload = {
        "id": delivery.id,
        "event": event,
        "created_at": delivery.created_at.isoformat(),
        **data,
    }
    session.add(delivery)
    session.flush()
    return delivery


def get_webhook_delivery(
    session: Session, delivery_id: str, *, lock: bool = False
) -> WebhookDelivery:
    query = select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
    if lock:
        query = query.with_for_update()
    delivery = session.exec(query).first()
    if delivery is None:
        raise NotFound(f"no webhook delivery with id {delivery_id}")
    return delivery


def webhook_deliveries_of(session: Session, video_id: str) -> Sequence[WebhookDelivery]:
    query = select(WebhookDelivery).where(WebhookDelivery.video_id == video_id)
    return session.exec(query.order_by(col(WebhookDelivery.created_at))).all()
