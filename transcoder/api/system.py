"""Health, readiness, metrics and the profiles on offer."""

from __future__ import annotations

import logging
import shutil
import subprocess

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from transcoder.api.deps import Authorized, CtxDep
from transcoder.api.metrics import farm_registry
from transcoder.api.schemas import FormatView, ProfileView, RungView
from transcoder.errors import TranscoderError
from transcoder.profiles import available_profiles, load_profile
from transcoder.queue.context import Context

log = logging.getLogger("transcoder.api")
router = APIRouter()


@router.get("/healthz", tags=["health"])
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", tags=["health"])
def readyz(ctx: CtxDep) -> JSONResponse:
    """The database, Redis, storage and ffmpeg all answer; 503 names those that do not."""
    checks = {
        "database": _check_database(ctx),
        "redis": _check_redis(ctx),
        "storage": _check_storage(ctx),
        "ffmpeg": _check_ffmpeg(ctx),
    }
    ready = all(v == "ok" for v in checks.values())
    failed = [name for name, v in checks.items() if v != "ok"]
    if failed:
        log.warning("not ready: %s", ", ".join(f"{n}: {checks[n]}" for n in failed))
    body = {"status": "ready" if ready else "unavailable", "failed": failed, "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", tags=["health"], dependencies=[Authorized])
def metrics(ctx: CtxDep) -> PlainTextResponse:
    """Prometheus metrics read from the records and the queues at scrape time."""
    return PlainTextResponse(generate_latest(farm_registry(ctx)), media_type=CONTENT_TYPE_LATEST)


@router.get("/profiles", tags=["profiles"], dependencies=[Authorized])
def profiles() -> list[ProfileView]:
    """The ladders a video can be submitted with."""
    views = []
    for name in available_profiles():
        p = load_profile(name)
        views.append(
            ProfileView(
                name=p.name,
                max_fps=p.max_fps,
                formats=[
                    FormatView(
                        name=f.name,
                        container=f.container,
                        video_codec=f.video_codec_name,
                        audio_codec=f.audio_codec_name,
                    )
                    for f in p.formats
                ],
                rungs=[RungView(size=r.size, max_kbps=r.max_kbps) for r in p.rungs_by_size],
            )
        )
    return views


def _check_database(ctx: Context) -> str:
    try:
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return f"error: {type(exc).__name__}"
    return "ok"


def _check_redis(ctx: Context) -> str:
    try:
        Redis.from_url(ctx.settings.redis_url, socket_timeout=2, socket_connect_timeout=2).ping()
    except RedisError as exc:
        return f"error: {type(exc).__name__}"
    return "ok"


def _check_storage(ctx: Context) -> str:
    try:
        ctx.storage.check()
    except TranscoderError as exc:
        return f"error: {exc.reason}"
    return "ok"


def _check_ffmpeg(ctx: Context) -> str:
    binary = shutil.which(ctx.settings.ffmpeg_path)
    if binary is None:
        return f"error: {ctx.settings.ffmpeg_path} not found"
    try:
        subprocess.run([binary, "-version"], capture_output=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return "error: ffmpeg -version failed"
    return "ok"
