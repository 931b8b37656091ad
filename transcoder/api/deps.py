"""Dependencies injected into routes: the context, a database session and the API key check."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from transcoder.api.errors import APIError
from transcoder.db.engine import session_scope
from transcoder.queue.context import Context

_bearer = HTTPBearer(auto_error=False, description="An API key from TRANSCODER_API_KEYS")


def get_ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def get_session(ctx: Annotated[Context, Depends(get_ctx)]) -> Iterator[Session]:
    with session_scope(ctx.engine) as session:
        yield session


def require_key(
    ctx: Annotated[Context, Depends(get_ctx)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 without a bearer key, 403 with one that is not configured. Keys are never logged."""
    if credentials is None or not credentials.credentials:
        raise APIError(401, "an API key is required (Authorization: Bearer <key>)")
    offered = credentials.credentials.encode()
    if not any(hmac.compare_digest(offered, k.encode()) for k in ctx.settings.api_key_list):
        raise APIError(403, "the API key is not valid")


CtxDep = Annotated[Context, Depends(get_ctx)]
SessionDep = Annotated[Session, Depends(get_session)]
Authorized = Depends(require_key)
