"""A self-hosted video transcoding farm built on ffmpeg, RQ and S3-compatible storage."""

__version__ = "0.1.0"
