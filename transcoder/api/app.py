"""The FastAPI application: routers, error handlers, the web page."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from transcoder import __version__
from transcoder.api import files, system, videos
from transcoder.api.errors import install_handlers
from transcoder.errors import ConfigError
from transcoder.queue.context import Context, build_context
from transcoder.settings import Settings

log = logging.getLogger("transcoder.api")
STATIC = Path(__file__).parent / "static"


def create_app(settings: Settings | None = None, ctx: Context | None = None) -> FastAPI:
    """Build the app for these settings; refuse to serve without Redis or API keys."""
    settings = settings or (ctx.settings if ctx else Settings())
    if settings.embedded:
        raise ConfigError("the API needs REDIS_URL: it queues work for `transcoder worker`")
    if not settings.api_key_list:
        raise ConfigError("the API needs TRANSCODER_API_KEYS (comma-separated bearer keys)")

    app = FastAPI(
        title="transcoder",
        version=__version__,
        description="Submit videos, follow their transcodes and download the renditions.",
    )
    app.state.ctx = ctx or build_context(settings)
    install_handlers(app)
    app.include_router(system.router)
    app.include_router(videos.router)
    app.include_router(files.router)
    app.mount("/ui", StaticFiles(directory=STATIC, html=True), name="ui")

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/ui/")

    @app.middleware("http")
    async def access_log(request: Request, call_next):
        """One line per request; never the query string (signed links) or headers (keys)."""
        started = time.monotonic()
        response = await call_next(request)
        log.info(
            "%s %s %d %.0f ms",
            request.method,
            request.url.path,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return response

    return app
