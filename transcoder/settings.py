"""One settings object, read from the environment once per process.

Names match the keys of the Kubernetes ConfigMap and Secret in k8s/. Every setting has a
safe embedded default, so a laptop needs no server: SQLite, local files, jobs run in-process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from transcoder.errors import ConfigError

# What k8s/secret.template.yaml ships with; a deployment must replace every one.
PLACEHOLDER = "REPLACE-ME"


class Settings(BaseSettings):
    """Configuration of the API, the workers and the CLI."""

    model_config = SettingsConfigDict(
        env_prefix="TRANSCODER_", extra="ignore", populate_by_name=True
    )

    # Where things live.
    data_dir: Path = Path("transcoder-data")
    database_url: str = Field(
        "", validation_alias=AliasChoices("DATABASE_URL", "TRANSCODER_DATABASE_URL")
    )
    redis_url: str = Field("", validation_alias=AliasChoices("REDIS_URL", "TRANSCODER_REDIS_URL"))
    work_dir: Path | None = None

    # Storage of sources, renditions and previews.
    storage: Literal["local", "s3"] = "local"
    storage_dir: Path | None = None
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: SecretStr = SecretStr("")

    # ffmpeg and the limits of every run.
    ffmpeg_path: str = "ffmpeg"
    ffprobe_path: str = "ffprobe"
    profile: str = "web"
    ffmpeg_threads: int = Field(0, ge=0)
    job_slots: int = Field(0, ge=0)
    max_input_pixels: int = Field(8192 * 4352, gt=0)
    max_duration_seconds: float = Field(4 * 3600, gt=0)
    encode_timeout_base: float = Field(120, gt=0)
    encode_timeout_factor: float = Field(12, gt=0)
    encode_retries: int = Field(2, ge=0)
    ffmpeg_memory_mb: int = Field(8192, ge=0)  # address-space cap per ffmpeg; 0 = none

    # Queues (used only when REDIS_URL is set).
    queue_prefix: str = "transcoder"
    # A worker asked to stop lets its job run this long, then hands it back to the queue.
    stop_grace_seconds: float = Field(540, ge=0)
    # How often an idle worker looks for jobs abandoned by dead workers.
    maintenance_seconds: int = Field(10, ge=1)
    # How often a worker checks that queued and encoding videos still have their jobs in
    # Redis, putting back what is missing (0: never), and how long a video must have been
    # left alone before it is checked, so one being planned right now is not disturbed.
    reconcile_seconds: float = Field(60, ge=0)
    reconcile_grace_seconds: float = Field(30, ge=0)
    # How long a job keeps retrying a record write while the database is unreachable.
    db_retry_seconds: float = Field(60, ge=0)

    # The HTTP API.
    api_keys: SecretStr = SecretStr("")  # comma-separated bearer keys
    public_url: str = "http://127.0.0.1:8000"  # how clients reach the API, for download links
    signing_key: SecretStr = SecretStr("")  # signs local-storage download links
    max_upload_bytes: int = Field(10 * 1024**3, gt=0)
    url_import_max_redirects: int = Field(3, ge=0, le=10)
    url_import_timeout: float = Field(30, gt=0)
    allow_private_urls: bool = False  # only for tests that import from a local server

    # Webhooks.
    webhook_url: str = ""  # receives every video's events, beside per-video callback URLs
    webhook_secret: SecretStr = SecretStr("")
    webhook_retries: int = Field(5, ge=0, le=20)
    # Seconds before each retry of a webhook; the last value repeats when retries outnumber it.
    webhook_backoff: str = Field("5,15,60,300,900", pattern=r"^\s*\d+(\s*,\s*\d+)*\s*$")

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.storage == "s3" and not self.s3_bucket:
            raise ConfigError("TRANSCODER_S3_BUCKET is required when TRANSCODER_STORAGE=s3")
        secrets = {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "TRANSCODER_S3_ACCESS_KEY_ID": self.s3_access_key_id,
            "TRANSCODER_S3_SECRET_ACCESS_KEY": self.s3_secret_access_key.get_secret_value(),
            "TRANSCODER_API_KEYS": self.api_keys.get_secret_value(),
            "TRANSCODER_SIGNING_KEY": self.signing_key.get_secret_value(),
            "TRANSCODER_WEBHOOK_SECRET": self.webhook_secret.get_secret_value(),
        }
        for name, value in secrets.items():
            if PLACEHOLDER in value:
                raise ConfigError(f"{name} still holds the placeholder {PLACEHOLDER}")
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'transcoder.db').resolve()}"

    @property
    def resolved_storage_dir(self) -> Path:
        return (self.storage_dir or self.data_dir / "storage").resolve()

    @property
    def resolved_work_dir(self) -> Path:
        return (self.work_dir or self.data_dir / "work").resolve()

    @property
    def api_key_list(self) -> list[str]:
        return [k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip()]

    @property
    def embedded(self) -> bool:
        """True when no Redis is configured: jobs run in this process."""
        return not self.redis_url

    def slots(self) -> int:
        """How many jobs this process runs side by side."""
        if self.job_slots:
            return self.job_slots
        return 1 if not self.embedded else min(available_cpus(), 4)

    def threads_per_job(self) -> int:
        """ffmpeg threads for one job: this machine's CPUs divided among the jobs sharing it.

        libvpx wastes much of its CPU when several encodes each run as many threads as the
        machine has cores, so the share is explicit rather than left to ffmpeg.
        """
        if self.ffmpeg_threads:
            return self.ffmpeg_threads
        return max(1, available_cpus() // self.slots())


def available_cpus() -> int:
    """CPUs this process may use: the affinity mask, capped by a cgroup v2 quota if any."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpus = cpus or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return cpus
    if quota == "max":
        return cpus
    return max(1, min(cpus, int(int(quota) // int(period))))
