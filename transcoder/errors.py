"""The exception tree. Every error the farm raises on purpose derives from TranscoderError.

`transient` tells the queue whether running the same job again could succeed; it is decided
by the type of the error, never by its message.
"""

from __future__ import annotations


class TranscoderError(Exception):
    """Root of every error raised by the farm."""

    transient = False

    def __init__(self, reason: str, *, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class ConfigError(TranscoderError):
    """Settings are missing or inconsistent."""


class ProfileError(ConfigError):
    """A profile file does not validate; the reason names the field."""


class InputError(TranscoderError):
    """The source itself is unusable (not a video, empty, truncated, over a limit)."""


class ProbeError(InputError):
    """ffprobe could not read the source as media."""


class EncodeError(TranscoderError):
    """ffmpeg exited non-zero while making a rendition or preview."""

    def __init__(self, reason: str, *, detail: str = "", exit_code: int | None = None) -> None:
        super().__init__(reason, detail=detail)
        self.exit_code = exit_code


class EncodeTimeout(EncodeError):
    """ffmpeg ran past its time limit and was killed."""

    transient = True


class EncodeKilled(EncodeError):
    """ffmpeg was killed by a signal it did not ask for (often the out-of-memory killer)."""

    transient = True


class Cancelled(EncodeError):
    """ffmpeg was stopped on purpose (shutdown or cancellation); not retried."""


class VerifyError(TranscoderError):
    """A finished output does not match what was planned."""


class StorageError(TranscoderError):
    """Reading or writing the object store failed for good."""


class TransientStorageError(StorageError):
    """The object store failed in a way that may pass (timeouts, throttling, 5xx)."""

    transient = True


class NotFound(TranscoderError):
    """A record or object that was asked for does not exist."""


class URLRefused(InputError):
    """A URL is not one the farm will fetch or post to: its scheme, its address, its size."""


class FetchFailed(TranscoderError):
    """An outbound HTTP request failed in a way that may pass (5xx, timeout, reset)."""

    transient = True
