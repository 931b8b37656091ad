"""/videos: submit by upload or by link, list, show, delete and retry."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError
from sqlmodel import col, func, select
from starlette.concurrency import run_in_threadpool

from transcoder import lifecycle
from transcoder.api.deps import Authorized, CtxDep, SessionDep
from transcoder.api.errors import APIError
from transcoder.api.schemas import VideoFromURL, VideoPage
from transcoder.api.uploads import receive_upload
from transcoder.db import records
from transcoder.db.engine import session_scope
from transcoder.db.models import Video, VideoStatus
from transcoder.ingest.urlfetch import check_public_url
from transcoder.links import download_url
from transcoder.profiles import available_profiles
from transcoder.queue.context import Context
from transcoder.submit import accept_file, accept_url
from transcoder.views import VideoView, video_view

log = logging.getLogger("transcoder.api")
router = APIRouter(prefix="/videos", tags=["videos"], dependencies=[Authorized])

_SUBMIT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "profile": {"type": "string"},
                        "callback_url": {"type": "string"},
                    },
                }
            },
            "application/json": {"schema": VideoFromURL.model_json_schema()},
        },
    }
}


@router.post("", status_code=202, response_model=VideoView, openapi_extra=_SUBMIT_BODY)
async def create_video(request: Request, ctx: CtxDep) -> VideoView:
    """Submit a video: a multipart upload (`file`), or JSON `{"url": ...}` to import by link."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = VideoFromURL.model_validate_json(await request.body())
        except ValidationError as exc:
            first = exc.errors()[0]
            raise APIError(422, f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
        await run_in_threadpool(_check_options, ctx, body.profile, body.callback_url)
        video_id = await run_in_threadpool(
            accept_url, ctx, body.url, profile=body.profile, callback_url=body.callback_url
        )
        await run_in_threadpool(lifecycle.start, ctx, video_id, import_first=True)
    else:
        workdir = ctx.settings.resolved_work_dir / "uploads"
        upload = await receive_upload(request, workdir, ctx.settings.max_upload_bytes)
        try:
            profile = upload.fields.get("profile") or None
            callback = upload.fields.get("callback_url") or None
            await run_in_threadpool(_check_options, ctx, profile, callback)
            video_id = await run_in_threadpool(
                accept_file,
                ctx,
                upload.path,
                profile=profile,
                name=upload.filename,
                callback_url=callback,
            )
        finally:
            upload.path.unlink(missing_ok=True)
        await run_in_threadpool(lifecycle.start, ctx, video_id)
    return await run_in_threadpool(_view, ctx, video_id)


@router.get("", response_model=VideoPage)
def list_videos(
    ctx: CtxDep,
    session: SessionDep,
    status: VideoStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> VideoPage:
    """Videos, newest first, optionally only those with one status."""
    if status == VideoStatus.DELETED:
        raise APIError(422, "deleted videos are not listed")
    where = [col(Video.status) == status] if status else [col(Video.status) != VideoStatus.DELETED]
    total = session.exec(select(func.count()).select_from(Video).where(*where)).one()
    rows = session.exec(
        select(Video)
        .where(*where)
        .order_by(col(Video.created_at).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    link = _linker(ctx)
    return VideoPage(
        items=[video_view(session, v, link) for v in rows], total=total, limit=limit, offset=offset
    )


@router.get("/{video_id}", response_model=VideoView)
def get_video(video_id: str, ctx: CtxDep) -> VideoView:
    """One video: status, progress and ETA, renditions with download URLs, preview."""
    return _view(ctx, video_id)


@router.delete("/{video_id}", status_code=204)
def delete_video(video_id: str, ctx: CtxDep) -> Response:
    """Cancel the video's queued and running jobs and delete its files."""
    lifecycle.delete_video(ctx, video_id)
    return Response(status_code=204)


@router.post("/{video_id}/retry", status_code=202, response_model=VideoView)
def retry_video(video_id: str, ctx: CtxDep) -> VideoView:
    """Run again only what failed."""
    try:
        lifecycle.retry_video(ctx, video_id)
    except lifecycle.Conflict as exc:
        raise APIError(409, exc.reason) from exc
    return _view(ctx, video_id)


def _view(ctx: Context, video_id: str) -> VideoView:
    with session_scope(ctx.engine) as session:
        video = records.get_video(session, video_id)
        if video.status == VideoStatus.DELETED:
            raise APIError(404, f"no video with id {video_id}")
        return video_view(session, video, _linker(ctx))


def _linker(ctx: Context):
    return lambda key: download_url(ctx.settings, ctx.storage, key)


def _check_options(ctx: Context, profile: str | None, callback_url: str | None) -> None:
    """Clients pick among the built-in profiles; callbacks must be public http(s) URLs."""
    if profile is not None and profile not in available_profiles():
        raise APIError(422, f"unknown profile {profile!r}; choose one of {available_profiles()}")
    if callback_url is not None:
        check_public_url(callback_url, allow_private=ctx.settings.allow_private_urls)
