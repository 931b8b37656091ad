"""Workers killed or stopped mid-encode: every video still finishes, nothing twice."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from datetime import UTC, datetime

import pytest

from transcoder.db import records
from transcoder.db.engine import session_scope
from transcoder.db.models import TaskStatus, VideoStatus
from transcoder.queue.context import build_context, install
from transcoder.submit import submit_file

pytestmark = [pytest.mark.services, pytest.mark.slow]


def running_renditions(ctx):
    with session_scope(ctx.engine) as session:
        from sqlmodel import select

        from transcoder.db.models import Rendition

        rows = session.exec(select(Rendition).where(Rendition.status == TaskStatus.RUNNING)).all()
        return [(r.id, r.worker, r.attempts) for r in rows]


def descendants(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    children = [int(p) for p in found.split()]
    return children + [d for c in children for d in descendants(c)]


def kill_pod(proc: subprocess.Popen) -> None:
    """SIGKILL the worker, its work horse and its ffmpeg at once, like a killed pod."""
    for pid in [proc.pid, *descendants(proc.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(10)


def wait_all_final(ctx, ids, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(ctx.engine) as session:
            states = [records.get_video(session, i).status for i in ids]
        if all(s in (VideoStatus.SUCCEEDED, VideoStatus.ERROR) for s in states):
            return states
        time.sleep(1)
    raise AssertionError(f"videos not final after {timeout} s: {states}")


def test_ten_killed_workers_lose_no_video_and_encodes_resume_within_two_minutes(
    farm_settings, start_worker, make_clip
):
    ctx = install(build_context(farm_settings))
    clip = make_clip(
        "kill.mp4",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=960x540:r=30:d=6",
        "-f",
        "lavfi",
        "-i",
        "sine=d=6",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
    )
    workers = {f"w{i}": start_worker("--name", f"w{i}") for i in range(3)}
    ids = [submit_file(ctx, clip) for _ in range(10)]

    kills: dict[str, datetime] = {}
    deadline = time.monotonic() + 400
    spare = 3
    while len(kills) < 10 and time.monotonic() < deadline:
        victims = [
            (rid, worker)
            for rid, worker, attempts in running_renditions(ctx)
            if rid not in kills and attempts == 1 and worker in workers
        ]
        if not victims:
            time.sleep(0.3)
            continue
        rendition_id, worker = victims[0]
        kill_pod(workers.pop(worker))
        kills[rendition_id] = datetime.now(UTC)
        workers[f"w{spare}"] = start_worker("--name", f"w{spare}")
        spare += 1

    assert len(kills) == 10, f"only {len(kills)} kills happened"
    states = wait_all_final(ctx, ids, timeout=400)

    assert states == [VideoStatus.SUCCEEDED] * 10
    recoveries = []
    with session_scope(ctx.engine) as session:
        for rendition_id, killed_at in kills.items():
            r = records.get_rendition(session, rendition_id)
            assert r.status == TaskStatus.SUCCEEDED and r.attempts >= 2
            recoveries.append((r.started_at.replace(tzinfo=UTC) - killed_at).total_seconds())
        for video_id in ids:
            renditions = records.renditions_of(session, video_id)
            assert len({r.name for r in renditions}) == len(renditions) == 6
            stored = sorted(
                p.name for p in (farm_settings.resolved_storage_dir / "videos" / video_id).iterdir()
            )
            assert stored == sorted(
                [
                    *(r.storage_key.rsplit("/", 1)[1] for r in renditions),
                    "poster.jpg",
                    "thumb-160.jpg",
                    "thumb-480.jpg",
                    "source",
                ]
            )
    print(
        f"recovery after kill: max {max(recoveries):.1f} s, "
        f"mean {sum(recoveries) / len(recoveries):.1f} s"
    )
    assert max(recoveries) < 120


def test_sigterm_hands_a_long_job_back_after_the_grace_period(
    farm_settings, start_worker, make_clip
):
    ctx = install(build_context(farm_settings))
    clip = make_clip(
        "term.mp4",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=1280x720:r=30:d=40",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
    )
    first = start_worker("--name", "leaving", env={"TRANSCODER_STOP_GRACE_SECONDS": "3"})
    video_id = submit_file(ctx, clip)
    deadline = time.monotonic() + 60
    while not running_renditions(ctx) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert running_renditions(ctx)

    stop_asked = time.monotonic()
    first.send_signal(signal.SIGTERM)
    first.wait(60)
    stopped_after = time.monotonic() - stop_asked

    assert stopped_after < 20
    with session_scope(ctx.engine) as session:
        taken = {r.worker for r in records.renditions_of(session, video_id) if r.attempts}
    assert taken == {"leaving"}  # it took only the job it was running
    start_worker("--name", "staying")
    (state,) = wait_all_final(ctx, [video_id], timeout=300)
    assert state == VideoStatus.SUCCEEDED
