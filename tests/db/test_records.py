"""Records on SQLite and PostgreSQL, and the row lock that lets only one worker finish a video."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from transcoder.db import records
from transcoder.db.engine import ensure_schema, get_engine, session_scope
from transcoder.db.models import TaskStatus, VideoStatus
from transcoder.errors import NotFound
from transcoder.queue import jobs
from transcoder.queue.context import build_context, install
from transcoder.settings import Settings


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        return get_engine(f"sqlite:///{tmp_path / 'records.db'}")
    return get_engine(request.getfixturevalue("pg_url"))


def test_video_round_trips_with_its_probe_and_status(engine):
    with session_scope(engine) as session:
        video = records.create_video(session, source_name="clip.mp4", profile="web")
        video.probe = {"container": "mov", "duration": 1.5}
        records.set_video_status(video, VideoStatus.ENCODING)
        video_id = video.id

    with session_scope(engine) as session:
        loaded = records.get_video(session, video_id)
    assert loaded.status == VideoStatus.ENCODING and loaded.started_at is not None
    assert loaded.probe == {"container": "mov", "duration": 1.5}


def test_unknown_video_raises_not_found(engine):
    with session_scope(engine) as session, pytest.raises(NotFound):
        records.get_video(session, "0" * 32)


def test_finalize_marks_unfinished_tasks_and_reports_them(tmp_path):
    settings = Settings(data_dir=tmp_path, redis_url="", database_url="")
    ctx = install(build_context(settings))
    with session_scope(ctx.engine) as session:
        video = records.create_video(session, source_name="x.mp4", profile="web")
        records.set_video_status(video, VideoStatus.ENCODING)
        video_id = video.id
    jobs.finalize_video(video_id)

    with session_scope(ctx.engine) as session:
        video = records.get_video(session, video_id)
    assert video.status == VideoStatus.SUCCEEDED  # nothing was planned, nothing failed


def test_failure_summary_groups_outputs_by_reason():
    summary = jobs.failure_summary(
        [("720p-h264", "timed out"), ("720p-vp8", "timed out"), ("preview", "no frame")], total=5
    )
    assert summary == "3 of 5 outputs failed (720p-h264, 720p-vp8: timed out; preview: no frame)"


@pytest.mark.services
def test_postgres_row_lock_holds_back_a_second_finisher(pg_url):
    engine = get_engine(pg_url)
    with session_scope(engine) as session:
        video = records.create_video(session, source_name="x.mp4", profile="web")
        records.set_video_status(video, VideoStatus.ENCODING)
        video_id = video.id

    with session_scope(engine) as first:
        records.get_video(first, video_id, lock=True)
        with session_scope(engine) as second:
            second.exec(text("SET LOCAL lock_timeout = '300ms'"))
            with pytest.raises(OperationalError, match="lock timeout"):
                records.get_video(second, video_id, lock=True)


@pytest.mark.services
def test_two_concurrent_finalizers_finish_a_video_once(pg_url, tmp_path, caplog):
    settings = Settings(data_dir=tmp_path, redis_url="", database_url=pg_url)
    ctx = install(build_context(settings))
    with session_scope(ctx.engine) as session:
        video = records.create_video(session, source_name="x.mp4", profile="web")
        records.set_video_status(video, VideoStatus.ENCODING)
        video_id = video.id
    # Hold the lock so both finalizers queue up behind it, then let them race.
    barrier = threading.Barrier(3)

    def finalize() -> None:
        barrier.wait()
        jobs.finalize_video(video_id)

    caplog.set_level("INFO", logger="transcoder.worker")
    threads = [threading.Thread(target=finalize) for _ in range(2)]
    with session_scope(ctx.engine) as holder:
        records.get_video(holder, video_id, lock=True)
        for t in threads:
            t.start()
        barrier.wait()
        time.sleep(0.3)
    for t in threads:
        t.join(10)

    finished = [r for r in caplog.records if r.getMessage().startswith(f"video {video_id} succ")]
    assert len(finished) == 1
    with session_scope(ctx.engine) as session:
        assert records.get_video(session, video_id).status == VideoStatus.SUCCEEDED


def test_weighted_progress_counts_big_renditions_more():
    from transcoder.db.models import Rendition

    big = Rendition(
        video_id="v",
        name="720p",
        rung="720p",
        video_codec="h264",
        container="mp4",
        width=1280,
        height=720,
        bitrate_kbps=1,
        plan={},
        status=TaskStatus.SUCCEEDED,
    )
    small = Rendition(
        video_id="v",
        name="240p",
        rung="240p",
        video_codec="h264",
        container="mp4",
        width=426,
        height=240,
        bitrate_kbps=1,
        plan={},
        progress=0.0,
    )
    assert records.weighted_progress([big, small]) == pytest.approx(0.9, abs=0.01)


def test_database_from_an_older_version_gets_new_columns(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = get_engine(url)
    ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(text('ALTER TABLE video DROP COLUMN "profile_spec"'))
    get_engine.cache_clear()

    upgraded = get_engine(url)

    with session_scope(upgraded) as session:
        video = records.create_video(
            session, source_name="x.mp4", profile="web", profile_spec={"name": "web"}
        )
        video_id = video.id
    with session_scope(upgraded) as session:
        assert records.get_video(session, video_id).profile_spec == {"name": "web"}
