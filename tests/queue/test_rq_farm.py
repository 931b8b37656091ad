"""The farm as deployed: PostgreSQL records, Redis queues and real `transcoder worker` processes."""

from __future__ import annotations

import json
import time
import zlib
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

import transcoder.profiles
from transcoder.db import records
from transcoder.db.engine import session_scope
from transcoder.db.models import TaskStatus, VideoStatus
from transcoder.queue.context import Context, build_context, install
from transcoder.queue.dispatch import queue_names
from transcoder.submit import submit_file

pytestmark = pytest.mark.services


def wait_final(ctx: Context, video_id: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(ctx.engine) as session:
            video = records.get_video(session, video_id)
            if video.status in (VideoStatus.SUCCEEDED, VideoStatus.ERROR):
                return
        time.sleep(0.5)
    raise AssertionError(f"video {video_id} still {video.status} after {timeout} s")


def test_worker_process_transcodes_a_real_clip_into_postgres_records(
    farm_settings, start_worker, sample, ffprobe_streams
):
    ctx = install(build_context(farm_settings))
    start_worker()

    video_id = submit_file(ctx, sample("bikes.mp4"))
    wait_final(ctx, video_id)

    with session_scope(ctx.engine) as session:
        video = records.get_video(session, video_id)
        renditions = records.renditions_of(session, video_id)
        preview = records.preview_of(session, video_id)
    assert video.status == VideoStatus.SUCCEEDED, video.error
    assert ctx.engine.dialect.name == "postgresql"
    assert sorted(r.name for r in renditions) == ["240p-h264", "240p-vp8"]
    for r in renditions:
        assert r.status == TaskStatus.SUCCEEDED
        assert r.worker and not r.worker.startswith("inline") and r.job_id
        info = ffprobe_streams(ctx.storage.fetch(r.storage_key, Path("/unused")))
        v = next(s for s in info["streams"] if s["codec_type"] == "video")
        assert (v["codec_name"], v["width"], v["height"]) == (r.video_codec, 564, 240)
        assert not any(s["codec_type"] == "audio" for s in info["streams"])
    assert preview.status == TaskStatus.SUCCEEDED and len(preview.images) == 3


def test_bad_input_errors_and_the_worker_goes_on_to_the_next_video(
    farm_settings, start_worker, small_clip, tmp_path
):
    ctx = install(build_context(farm_settings))
    worker = start_worker()
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video at all\n" * 50)
    good = small_clip

    bad_id = submit_file(ctx, bad)
    good_id = submit_file(ctx, good)
    wait_final(ctx, bad_id)
    wait_final(ctx, good_id)

    with session_scope(ctx.engine) as session:
        bad_video = records.get_video(session, bad_id)
        good_video = records.get_video(session, good_id)
    assert bad_video.status == VideoStatus.ERROR
    assert "could not decode" in bad_video.error
    assert bad_video.error_detail  # ffprobe's stderr is kept for operators
    assert good_video.status == VideoStatus.SUCCEEDED, good_video.error
    assert worker.poll() is None


def test_jobs_carry_ids_only_as_json(farm_settings, small_clip):
    ctx = install(build_context(farm_settings))
    clip = small_clip

    video_id = submit_file(ctx, clip)

    redis = Redis.from_url(farm_settings.redis_url)
    control = Queue(queue_names(farm_settings)[0], connection=redis, serializer=JSONSerializer)
    (job,) = control.get_jobs()
    assert job.func_name == "transcoder.queue.jobs.plan_video"
    assert job.args == [video_id]
    payload = json.loads(zlib.decompress(redis.hget(job.key, "data")))
    assert payload[0] == "transcoder.queue.jobs.plan_video" and payload[2] == [video_id]


def test_custom_profile_travels_with_the_video_not_the_file(
    farm_settings, start_worker, make_clip, tmp_path
):
    ctx = install(build_context(farm_settings))
    web = (Path(transcoder.profiles.__file__).parent / "web.toml").read_text()
    small = tmp_path / "small.toml"
    small.write_text(
        web.replace('name = "web"', 'name = "small"').split("[[rungs]]")[0]
        + "[[rungs]]\nsize = 240\nmax_kbps = { h264 = 300, vp8 = 400 }\n"
    )
    clip = make_clip(
        "p.mp4",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=640x360:r=25:d=1",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
    )

    video_id = submit_file(ctx, clip, profile=str(small))
    small.unlink()  # workers elsewhere never see the file
    start_worker()
    wait_final(ctx, video_id)

    with session_scope(ctx.engine) as session:
        video = records.get_video(session, video_id)
        renditions = records.renditions_of(session, video_id)
    assert video.status == VideoStatus.SUCCEEDED, video.error
    assert video.profile == "small"
    assert sorted(r.name for r in renditions) == ["240p-h264", "240p-vp8"]


def test_plan_for_a_video_missing_from_the_database_is_logged_not_crashed(
    farm_settings, start_worker, tmp_path
):
    install(build_context(farm_settings))
    redis = Redis.from_url(farm_settings.redis_url)
    control = Queue(queue_names(farm_settings)[0], connection=redis, serializer=JSONSerializer)
    job = control.enqueue("transcoder.queue.jobs.plan_video", "0" * 32)

    worker = start_worker("--burst")
    worker.wait(timeout=60)

    job.refresh()
    assert job.get_status() == "finished"
    log = (tmp_path / "worker-0.log").read_text()
    assert "is not in this worker's database" in log and "Traceback" not in log
