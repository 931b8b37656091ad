"""Every error leaves the API as JSON of one shape: {"error": {"code", "message"}}.

No stack trace reaches a client; unexpected errors are logged here with theirs.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from transcoder.errors import InputError, NotFound, ProfileError, TranscoderError

log = logging.getLogger("transcoder.api")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    503: "unavailable",
}


class APIError(Exception):
    """An error with an HTTP status, raised by routes."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _CODES.get(status, "error")


def error_response(status: int, message: str, code: str | None = None, **extra) -> JSONResponse:
    body = {"error": {"code": code or _CODES.get(status, "error"), "message": message, **extra}}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api(request: Request, exc: APIError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.code)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        field = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{field}: {first['msg']}" if field else str(first["msg"])
        return error_response(422, message)

    @app.exception_handler(TranscoderError)
    async def _domain(request: Request, exc: TranscoderError) -> JSONResponse:
        if isinstance(exc, NotFound):
            return error_response(404, exc.reason)
        if isinstance(exc, ProfileError | InputError):
            return error_response(422, exc.reason)
        log.error("%s %s failed: %s", request.method, request.url.path, exc.reason)
        return error_response(503 if exc.transient else 500, exc.reason)

    @app.exception_handler(OperationalError)
    async def _database(request: Request, exc: OperationalError) -> JSONResponse:
        log.error("%s %s: database unavailable: %s", request.method, request.url.path, exc.orig)
        return error_response(503, "the database is unavailable; try again shortly")

    @app.exception_handler(RedisError)
    async def _queue(request: Request, exc: RedisError) -> JSONResponse:
        log.error("%s %s: Redis unavailable: %s", request.method, request.url.path, exc)
        return error_response(503, "the job queue is unavailable; try again shortly")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s crashed", request.method, request.url.path)
        return error_response(500, "internal error", code="internal")
