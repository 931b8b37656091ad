"""Streaming multipart uploads: the file part goes to disk chunk by chunk, never into memory,
and the request is refused with 413 the moment it passes the size limit."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from transcoder.api.errors import APIError

FIELD_LIMIT = 4096
FILE_FIELD = "file"


@dataclass
class Upload:
    """What a multipart request carried: the file on disk and the small text fields."""

    path: Path
    filename: str
    size: int
    fields: dict[str, str] = field(default_factory=dict)


async def receive_upload(request: Request, workdir: Path, max_bytes: int) -> Upload:
    """Parse a multipart/form-data body with one `file` part; other parts are short fields."""
    content_type, params = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise APIError(415, "send multipart/form-data with a 'file' part, or JSON with a 'url'")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + 64 * 1024:
        raise APIError(413, f"the upload is larger than the limit of {max_bytes} bytes")

    workdir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=workdir, prefix="upload-")
    sink = _Sink(os.fdopen(fd, "wb"), Path(name), max_bytes)
    parser = MultipartParser(params[b"boundary"], sink.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if sink.too_large:
                raise APIError(413, f"the upload is larger than the limit of {max_bytes} bytes")
        parser.finalize()
    except BaseException:
        sink.discard()
        raise
    sink.out.close()
    if sink.filename is None:
        sink.discard()
        raise APIError(422, "the form has no 'file' part")
    return Upload(path=sink.path, filename=sink.filename, size=sink.size, fields=sink.fields)


class _Sink:
    """Receives the parser's callbacks: file bytes to disk, fields to a small dict."""

    def __init__(self, out, path: Path, max_bytes: int) -> None:
        self.out = out
        self.path = path
        self.max_bytes = max_bytes
        self.size = 0
        self.too_large = False
        self.filename: str | None = None
        self.fields: dict[str, str] = {}
        self._header_name = b""
        self._headers: dict[bytes, bytes] = {}
        self._part: str | None = None
        self._is_file = False
        self._value = bytearray()

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self._begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def discard(self) -> None:
        self.out.close()
        self.path.unlink(missing_ok=True)

    def _begin(self) -> None:
        self._headers, self._header_name, self._value = {}, b"", bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        key = self._header_name.lower()
        self._headers[key] = self._headers.get(key, b"") + data[start:end]

    def _header_end(self) -> None:
        self._header_name = b""

    def _headers_done(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._part = params.get(b"name", b"").decode("utf-8", "replace")
        self._is_file = self._part == FILE_FIELD and b"filename" in params
        if self._is_file:
            if self.filename is not None:
                raise APIError(422, "send one file per request")
            self.filename = params[b"filename"].decode("utf-8", "replace")

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.size += end - start
            if self.size > self.max_bytes:
                self.too_large = True
                return
            self.out.write(data[start:end])
        elif len(self._value) + end - start <= FIELD_LIMIT:
            self._value += data[start:end]
        else:
            raise APIError(413, f"form field {self._part!r} is longer than {FIELD_LIMIT} bytes")

    def _end(self) -> None:
        if not self._is_file and self._part:
            self.fields[self._part] = self._value.decode("utf-8", "replace")
        self._is_file = False
