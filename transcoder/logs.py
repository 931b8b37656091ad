"""Logging set-up for the entry points (never done at import time)."""

from __future__ import annotations

import logging


def configure(level: int = logging.INFO) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # Keep third-party chatter out of the farm's lines unless debugging.
    # httpx and httpcore would print URLs with their query strings (signed links, tokens).
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "PIL", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
