"""Settings: embedded defaults, CPU shares, and refusals."""

from __future__ import annotations

import pytest

from transcoder.errors import ConfigError
from transcoder.settings import Settings, available_cpus


def test_defaults_need_no_server(tmp_path):
    s = Settings(data_dir=tmp_path, redis_url="", database_url="")

    assert s.embedded
    assert s.resolved_database_url == f"sqlite:///{tmp_path.resolve() / 'transcoder.db'}"
    assert s.resolved_storage_dir == (tmp_path / "storage").resolve()


def test_environment_names_match_the_deployment_keys(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://queue:6379/0")
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/transcoder")
    monkeypatch.setenv("TRANSCODER_JOB_SLOTS", "2")

    s = Settings()

    assert (s.redis_url, s.database_url, s.job_slots) == (
        "redis://queue:6379/0",
        "postgresql://db/transcoder",
        2,
    )
    assert not s.embedded


def test_threads_per_job_divide_the_cpus_among_the_slots(tmp_path):
    cpus = available_cpus()

    assert Settings(job_slots=1, redis_url="x").threads_per_job() == cpus
    assert Settings(job_slots=cpus * 2, redis_url="x").threads_per_job() == 1
    assert Settings(ffmpeg_threads=3).threads_per_job() == 3


def test_s3_storage_needs_a_bucket():
    with pytest.raises(ConfigError, match="TRANSCODER_S3_BUCKET is required"):
        Settings(storage="s3")


def test_placeholder_secrets_are_refused():
    with pytest.raises(ConfigError, match="DATABASE_URL still holds the placeholder"):
        Settings(database_url="postgresql://REPLACE-ME-user:x@db/transcoder")
