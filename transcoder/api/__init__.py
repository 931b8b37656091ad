"""The internal HTTP API (FastAPI): videos, profiles, health, metrics and a small web page."""

from transcoder.api.app import create_app

__all__ = ["create_app"]
