"""Table models. Statuses are str enums so they read the same in SQL, JSON and logs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class VideoStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    ENCODING = "encoding"
    SUCCEEDED = "succeeded"
    ERROR = "error"
    DELETED = "deleted"


FINAL_VIDEO = frozenset({VideoStatus.SUCCEEDED, VideoStatus.ERROR, VideoStatus.DELETED})


class TaskStatus(StrEnum):
    """Status of one rendition or preview job."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    ERROR = "error"


FINAL_TASK = frozenset({TaskStatus.SUCCEEDED, TaskStatus.ERROR})


class Video(SQLModel, table=True):
    """One submitted source and the overall state of its transcode."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    source_key: str = ""
    source_name: str = Field(default="", max_length=255)
    source_url: str | None = Field(default=None, sa_column=Column(Text))
    callback_url: str | None = Field(default=None, sa_column=Column(Text))
    job_id: str | None = None
    profile: str = "web"
    # The validated ladder as it was when the video was accepted, so workers need no copy
    # of a custom profile file and a later edit of the file does not change this video.
    profile_spec: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    status: VideoStatus = Field(default=VideoStatus.PENDING, index=True)
    error: str | None = Field(default=None, sa_column=Column(Text))
    error_detail: str | None = Field(default=None, sa_column=Column(Text))
    probe: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    progress: float = 0.0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class Rendition(SQLModel, table=True):
    """One output file of a video: a rung of the ladder in one format."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    video_id: str = Field(foreign_key="video.id", index=True, max_length=32)
    name: str
    rung: str
    video_codec: str
    audio_codec: str | None = None
    container: str
    width: int
    height: int
    bitrate_kbps: int
    plan: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: TaskStatus = Field(default=TaskStatus.PENDING)
    progress: float = 0.0
    size_bytes: int | None = None
    duration: float | None = None
    measured_kbps: int | None = None
    storage_key: str | None = None
    command: str | None = Field(default=None, sa_column=Column(Text))
    exit_code: int | None = None
    stderr_tail: str | None = Field(default=None, sa_column=Column(Text))
    error: str | None = Field(default=None, sa_column=Column(Text))
    attempts: int = 0
    worker: str | None = None
    job_id: str | None = None
    encode_seconds: float | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class Preview(SQLModel, table=True):
    """The poster and thumbnails of a video."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    video_id: str = Field(foreign_key="video.id", index=True, unique=True, max_length=32)
    plan: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: TaskStatus = Field(default=TaskStatus.PENDING)
    progress: float = 0.0
    images: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    error: str | None = Field(default=None, sa_column=Column(Text))
    stderr_tail: str | None = Field(default=None, sa_column=Column(Text))
    attempts: int = 0
    worker: str | None = None
    job_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookDelivery(SQLModel, table=True):
    """One event sent to one URL, with the outcome of its latest attempt.

    No foreign key to the video: the log of what was sent may outlive the video.
    """

    __tablename__ = "webhook_delivery"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    video_id: str = Field(index=True, max_length=32)
    event: str = Field(max_length=64)
    url: str = Field(sa_column=Column(Text, nullable=False))
    # The exact JSON body, built when the event happened; every attempt sends it unchanged.
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: DeliveryStatus = Field(default=DeliveryStatus.PENDING, index=True)
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None
    next_attempt_at: datetime | None = None
