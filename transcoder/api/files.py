"""Downloads from local storage through signed links (S3 storage hands out presigned URLs)."""

from __future__ import annotations

import mimetypes

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from transcoder.api.deps import CtxDep
from transcoder.api.errors import APIError
from transcoder.errors import StorageError
from transcoder.links import verify
from transcoder.storage import LocalStorage

router = APIRouter(tags=["files"])
MEDIA_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".jpg": "image/jpeg"}


@router.get("/files/{key:path}")
def download(key: str, ctx: CtxDep, expires: int = Query(), sig: str = Query()) -> FileResponse:
    """A stored rendition or image; the link's signature stands in for the API key."""
    if not isinstance(ctx.storage, LocalStorage) or not verify(ctx.settings, key, expires, sig):
        raise APIError(403, "the link is invalid or has expired")
    try:
        path = ctx.storage.path(key)
    except StorageError as exc:
        raise APIError(403, "the link is invalid or has expired") from exc
    if not path.is_file() or key.endswith("/source"):
        raise APIError(404, "no such file")
    media_type = (
        MEDIA_TYPES.get(path.suffix)
        or mimetypes.guess_type(path.name)[0]
        or "application/octet-stream"
    )
    return FileResponse(path, media_type=media_type)
