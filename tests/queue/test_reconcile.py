"""The farm survives losing Redis's contents and a database that is away for a while."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus
from rq.registry import DeferredJobRegistry
from rq.serializers import JSONSerializer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import create_engine

import transcoder.profiles
from transcoder import lifecycle
from transcoder.db import records
from transcoder.db.engine import session_scope, with_retries
from transcoder.db.models import FINAL_TASK, Preview, Rendition, TaskStatus, VideoStatus, utcnow
from transcoder.queue import outcomes
from transcoder.queue.context import Context, build_context, install
from transcoder.queue.dispatch import JOBS, queue_names
from transcoder.queue.reconcile import reconcile
from transcoder.storage import source_key
from transcoder.submit import accept_file, submit_file

pytestmark = pytest.mark.services


@pytest.fixture
def farm(farm_settings) -> Context:
    return install(build_context(farm_settings))


@pytest.fixture
def queues(farm_settings) -> tuple[Queue, Queue]:
    redis = Redis.from_url(farm_settings.redis_url)
    return tuple(  # type: ignore[return-value]
        Queue(name, connection=redis, serializer=JSONSerializer)
        for name in queue_names(farm_settings)
    )


def add_video(
    ctx: Context,
    status: VideoStatus,
    *,
    age: float = 120,
    job_id: str | None = None,
    source_url: str | None = None,
) -> str:
    """A video row last changed `age` seconds ago."""
    with session_scope(ctx.engine) as session:
        video = records.create_video(session, source_name="crafted.mp4", profile="web")
        video.source_key = source_key(video.id)
        video.source_url = source_url
        video.job_id = job_id
        video.probe = {"duration": 2.0}
        records.set_video_status(video, status)
        video.updated_at = utcnow() - timedelta(seconds=age)
        return video.id


def add_task(
    ctx: Context,
    video_id: str,
    status: TaskStatus,
    *,
    job_id: str | None = None,
    name: str = "360p-h264",
    preview: bool = False,
    finished_ago: float = 120,
) -> str:
    """A rendition (or the preview) row; final ones finished `finished_ago` seconds ago."""
    finished = utcnow() - timedelta(seconds=finished_ago) if status in FINAL_TASK else None
    fields = {"status": status, "job_id": job_id, "finished_at": finished, "plan": {}}
    with session_scope(ctx.engine) as session:
        row: Rendition | Preview
        if preview:
            row = Preview(video_id=video_id, **fields)
        else:
            row = Rendition(
                video_id=video_id,
                name=name,
                rung="360",
                video_codec="h264",
                container="mp4",
                width=640,
                height=360,
                bitrate_kbps=800,
                **fields,
            )
        session.add(row)
        session.flush()
        return row.id


def load(ctx: Context, video_id: str):
    with session_scope(ctx.engine) as session:
        video = records.get_video(session, video_id)
        tasks = [*records.renditions_of(session, video_id)]
        preview = records.preview_of(session, video_id)
    return video, tasks, preview


def job(ctx: Context, job_id: str | None) -> Job:
    assert job_id
    redis = Redis.from_url(ctx.settings.redis_url)
    return Job.fetch(job_id, connection=redis, serializer=JSONSerializer)


# -- reconcile() on crafted rows ---------------------------------------------------------------


def test_queued_video_whose_job_is_gone_is_started_again(farm, queues):
    control, _ = queues
    lost = add_video(farm, VideoStatus.QUEUED, job_id="gone")
    unrecorded = add_video(farm, VideoStatus.QUEUED)
    to_import = add_video(farm, VideoStatus.QUEUED, job_id="gone", source_url="https://x.test/a")
    waiting = add_video(farm, VideoStatus.QUEUED)
    lifecycle.start(farm, waiting)  # its plan job is in the queue: left alone
    unrecorded_but_queued = add_video(farm, VideoStatus.QUEUED)
    farm.dispatcher.start(unrecorded_but_queued)  # as submit_file does: no job id kept

    report = reconcile(farm, grace=30)

    assert (report.restarted, report.checked) == (3, 5)
    for video_id, function in [
        (lost, "plan_video"),
        (unrecorded, "plan_video"),
        (to_import, "import_video"),
    ]:
        video, _, _ = load(farm, video_id)
        assert video.status == VideoStatus.QUEUED
        restarted = job(farm, video.job_id)
        assert (restarted.func_name, restarted.args) == (f"{JOBS}.{function}", [video_id])
    assert load(farm, unrecorded_but_queued)[0].job_id is None  # found by its queued job
    assert len(control.get_job_ids()) == 5


def test_encoding_video_with_a_lost_rendition_job_gets_it_enqueued_again(farm, queues):
    control, encode = queues
    video_id = add_video(farm, VideoStatus.ENCODING)
    done = add_task(farm, video_id, TaskStatus.SUCCEEDED, job_id="old-1", name="360p-vp8")
    # Its job vanished after a finalize came to depend on it: that finalize must not run.
    vanished = encode.enqueue("transcoder.queue.jobs.encode_rendition", "x")
    stale = control.enqueue_call(f"{JOBS}.finalize_video", args=(video_id,), depends_on=vanished)
    running = add_task(farm, video_id, TaskStatus.RUNNING, job_id=vanished.id)
    vanished.delete()
    preview = add_task(farm, video_id, TaskStatus.QUEUED, job_id="old-3", preview=True)

    report = reconcile(farm, grace=30)

    assert (report.resumed, report.tasks) == (1, 2)
    _, tasks, stored_preview = load(farm, video_id)
    by_id = {t.id: t for t in tasks}
    assert by_id[done].status == TaskStatus.SUCCEEDED and by_id[done].job_id == "old-1"
    again = job(farm, by_id[running].job_id)
    assert by_id[running].status == TaskStatus.QUEUED
    assert (again.func_name, again.args) == (f"{JOBS}.encode_rendition", [running])
    assert job(farm, stored_preview.job_id).args == [preview]
    assert stale.get_status() == JobStatus.CANCELED
    deferred = DeferredJobRegistry(queue=control).get_job_ids(cleanup=False)
    assert [job(farm, j).args for j in deferred] == [[video_id]]  # the new finalize


def test_outputs_that_still_have_jobs_are_left_alone(farm, queues):
    _, encode = queues
    video_id = add_video(farm, VideoStatus.ENCODING)
    alive = encode.enqueue("transcoder.queue.jobs.encode_rendition", "x")
    add_task(farm, video_id, TaskStatus.QUEUED, job_id=alive.id)
    add_task(farm, video_id, TaskStatus.QUEUED, job_id="gone", name="360p-vp8")

    report = reconcile(farm, grace=30)

    assert (report.checked, report.put_back) == (1, 0)
    assert encode.get_job_ids() == [alive.id]


def test_encoding_video_whose_outputs_all_ended_is_finalized_once(farm, queues):
    control, _ = queues
    video_id = add_video(farm, VideoStatus.ENCODING)
    add_task(farm, video_id, TaskStatus.SUCCEEDED)
    add_task(farm, video_id, TaskStatus.SUCCEEDED, preview=True)
    just_ended = add_video(farm, VideoStatus.ENCODING)
    add_task(farm, just_ended, TaskStatus.SUCCEEDED, finished_ago=2)

    first = reconcile(farm, grace=30)
    second = reconcile(farm, grace=30)  # the finalize is still in the queue

    assert (first.finalized, second.finalized) == (1, 0)
    (finalize,) = control.get_jobs()
    assert (finalize.func_name, finalize.args) == (f"{JOBS}.finalize_video", [video_id])
    SimpleWorker([control], connection=control.connection, serializer=JSONSerializer).work(
        burst=True
    )
    assert load(farm, video_id)[0].status == VideoStatus.SUCCEEDED
    assert load(farm, just_ended)[0].status == VideoStatus.ENCODING


def test_encoding_video_whose_plan_died_before_any_rendition_is_planned_again(farm):
    video_id = add_video(farm, VideoStatus.ENCODING, job_id="gone")

    report = reconcile(farm, grace=30)

    video, _, _ = load(farm, video_id)
    assert report.restarted == 1 and video.status == VideoStatus.QUEUED
    assert job(farm, video.job_id).func_name == f"{JOBS}.plan_video"


def test_videos_changed_within_the_grace_period_are_left_alone(farm, queues):
    queued = add_video(farm, VideoStatus.QUEUED, age=3, job_id="gone")
    encoding = add_video(farm, VideoStatus.ENCODING, age=3)
    add_task(farm, encoding, TaskStatus.RUNNING, job_id="gone")

    report = reconcile(farm, grace=30)

    assert (report.checked, report.put_back) == (0, 0)
    assert load(farm, queued)[0].job_id == "gone"
    assert all(q.count == 0 for q in queues)


def test_only_one_process_reconciles_at_a_time(farm):
    add_video(farm, VideoStatus.QUEUED, job_id="gone")
    redis = Redis.from_url(farm.settings.redis_url)
    held = redis.lock(f"{farm.settings.queue_prefix}:reconcile", timeout=30)
    assert held.acquire(blocking=False)
    try:
        assert reconcile(farm, grace=30).skipped
    finally:
        held.release()
    assert reconcile(farm, grace=30).restarted == 1


def test_reconcile_does_nothing_in_embedded_mode(ctx):
    assert reconcile(ctx, grace=0).skipped


# -- a database that is away for a while -------------------------------------------------------


def failing(times: int, exc: Exception) -> Callable[[], str]:
    calls = {"n": 0}

    def fn() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise exc
        return f"done after {calls['n']} calls"

    return fn


def disconnect() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("server closed the connection"))


def test_write_is_retried_until_the_database_answers(caplog):
    caplog.set_level(logging.WARNING, "transcoder.db")

    result = with_retries(failing(3, disconnect()), budget=10, wait=0.01, what="record of x")

    assert result == "done after 4 calls"
    retries = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(retries) == 3 and "server closed the connection" in retries[0].getMessage()


def test_write_retries_end_with_the_error_after_the_budget():
    started = time.monotonic()
    with pytest.raises(OperationalError):
        with_retries(failing(1000, disconnect()), budget=0.3, wait=0.05)
    assert time.monotonic() - started < 2


def test_other_errors_are_not_retried():
    with pytest.raises(ValueError):
        with_retries(failing(1, ValueError("a bug")), budget=10, wait=0.01)


def test_task_record_lands_after_the_database_comes_back(farm, monkeypatch):
    video_id = add_video(farm, VideoStatus.ENCODING)
    task_id = add_task(farm, video_id, TaskStatus.RUNNING)
    real_get_task = records.get_task
    outage = {"left": 2}

    def get_task(session, record_id, **kwargs):
        if outage["left"]:
            outage["left"] -= 1
            raise disconnect()
        return real_get_task(session, record_id, **kwargs)

    monkeypatch.setattr(outcomes.records, "get_task", get_task)
    outcomes.record(farm, task_id, status=TaskStatus.SUCCEEDED, exit_code=0)

    _, (task,), _ = load(farm, video_id)
    assert (task.status, task.exit_code, outage["left"]) == (TaskStatus.SUCCEEDED, 0, 0)


def test_progress_writer_skips_beats_while_the_database_is_unreachable(settings, caplog):
    caplog.set_level(logging.DEBUG, "transcoder.worker")
    engine = create_engine("postgresql+psycopg2://postgres@127.0.0.1:1/x", pool_pre_ping=True)
    ctx = build_context(settings)
    ctx.engine = engine
    writer = outcomes.ProgressWriter(ctx, "r" * 32)

    started = time.monotonic()
    writer(0.25)
    writer(0.5)  # within the pause after an outage: not even tried
    writer(1.0)

    assert time.monotonic() - started < 5
    skipped = [r for r in caplog.records if "progress not stored" in r.getMessage()]
    assert len(skipped) == 2


# -- real workers ----------------------------------------------------------------------------


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"{what} not within {timeout} s")


def test_redis_losing_its_contents_mid_encode_still_ends_every_video(
    farm, farm_settings, start_worker, make_clip, ffprobe_streams, tmp_path
):
    clip = make_clip(
        "reconcile.mp4",
        *("-f", "lavfi", "-i", "testsrc2=s=640x360:r=25:d=3"),
        *("-f", "lavfi", "-i", "sine=frequency=440:duration=3"),
        *("-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"),
    )
    first = start_worker()
    ids = [submit_file(farm, clip)]

    def encoding() -> bool:
        return any(t.status == TaskStatus.RUNNING for t in load(farm, ids[0])[1])

    wait_until(encoding, 60, "an encode")
    ids.append(submit_file(farm, clip))  # the CLI's way: the video's job id is not recorded
    ids.append(accept_file(farm, clip))
    lifecycle.start(farm, ids[-1])  # the API's way
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    forget_queues(Redis.from_url(farm_settings.redis_url), farm_settings.queue_prefix)
    before = {video_id: load(farm, video_id)[0].status for video_id in ids}

    started = time.monotonic()
    start_worker(
        env={"TRANSCODER_RECONCILE_SECONDS": "2", "TRANSCODER_RECONCILE_GRACE_SECONDS": "2"}
    )

    log = tmp_path / "worker-1.log"
    put_back = wait_until(
        lambda: log.read_text().count("put back") >= len(ids),
        30,
        "the worker putting every video back (does run_worker call start_reconciler?)",
    )

    def ended() -> bool:
        final = (VideoStatus.SUCCEEDED, VideoStatus.ERROR)
        return all(load(farm, video_id)[0].status in final for video_id in ids)

    wait_until(ended, 150, "every video ending")
    print(
        f"\nbefore: {sorted(before.values())}; put back {put_back:.1f} s and all ended "
        f"{time.monotonic() - started:.1f} s after the restart"
    )
    for video_id in ids:
        video, tasks, preview = load(farm, video_id)
        assert video.status == VideoStatus.SUCCEEDED, (video_id, video.error)
        assert len(tasks) == 4 and preview and preview.status == TaskStatus.SUCCEEDED
        for task in tasks:
            assert task.status == TaskStatus.SUCCEEDED and farm.storage.exists(task.storage_key)
            info = ffprobe_streams(farm.storage.fetch(task.storage_key, Path("/unused")))
            video_stream = next(s for s in info["streams"] if s["codec_type"] == "video")
            assert video_stream["height"] == task.height
    assert log.read_text().count("put back") == len(ids)  # each once, none disturbed later
    assert before[ids[0]] == VideoStatus.ENCODING


class FlakyPostgres:
    """A TCP proxy to the test PostgreSQL that can be taken down: it then cuts every open
    connection and hangs up on new ones at once, as a database behind a failing network."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.lock = threading.Lock()
        self.up = True
        self.open: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def set_up(self, up: bool) -> None:
        with self.lock:
            self.up = up
            if not up:
                for sock in self.open:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
                self.open.clear()

    def close(self) -> None:
        self.server.close()
        self.set_up(False)

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            with self.lock:
                if not self.up:
                    client.close()
                    continue
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
                self.open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def flaky_pg(pg_url):
    url = make_url(pg_url)
    proxy = FlakyPostgres(url.host or "127.0.0.1", url.port or 5432)
    yield proxy, url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    proxy.close()


def test_database_outage_mid_encode_is_waited_out(
    farm, start_worker, flaky_pg, make_clip, tmp_path
):
    proxy, proxied_url = flaky_pg
    web = (Path(transcoder.profiles.__file__).parent / "web.toml").read_text()
    small = tmp_path / "small.toml"
    small.write_text(
        web.replace('name = "web"', 'name = "small"').split("[[rungs]]")[0]
        + "[[rungs]]\nsize = 240\nmax_kbps = { h264 = 300, vp8 = 400 }\n"
    )
    clip = make_clip(
        "outage.mp4",
        *("-f", "lavfi", "-i", "testsrc2=s=640x360:r=25:d=3"),
        *("-c:v", "libx264", "-pix_fmt", "yuv420p"),
    )
    video_id = submit_file(farm, clip, profile=str(small))
    start_worker(env={"DATABASE_URL": proxied_url})
    log = tmp_path / "worker-0.log"

    def encoding() -> bool:
        return any(t.status == TaskStatus.RUNNING for t in load(farm, video_id)[1])

    wait_until(encoding, 60, "an encode")
    proxy.set_up(False)
    outage = wait_until(lambda: "record of task" in log.read_text(), 60, "a retried write")
    time.sleep(3)
    proxy.set_up(True)

    def ended() -> bool:
        return load(farm, video_id)[0].status in (VideoStatus.SUCCEEDED, VideoStatus.ERROR)

    recovered = wait_until(ended, 90, "the video ending")
    print(f"\ndatabase away {outage + 3:.1f} s; video ended {recovered:.1f} s after it returned")
    video, tasks, preview = load(farm, video_id)
    assert video.status == VideoStatus.SUCCEEDED, video.error
    assert [t.status for t in tasks] == [TaskStatus.SUCCEEDED] * 2
    assert preview and preview.status == TaskStatus.SUCCEEDED
    assert all(t.attempts == 1 for t in tasks)
    assert "retrying in" in log.read_text() and "Traceback" not in log.read_text()


def forget_queues(redis: Redis, prefix: str) -> None:
    """What a Redis restart does to this test's work: its queues, registries and jobs vanish.

    Only keys of this test's queues are deleted, so other test runs on the server are safe.
    """
    for key in redis.scan_iter("rq:job:*"):
        if redis.type(key) != b"hash":
            continue
        if (redis.hget(key, "origin") or b"").decode().startswith(prefix):
            redis.delete(key, key + b":dependents", key + b":dependencies")
    for key in redis.scan_iter(f"*{prefix}*"):
        redis.delete(key)
