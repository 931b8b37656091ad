"""Running ffmpeg: progress parsing, real runs, failures with their stderr, and hard timeouts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from transcoder.encode.runner import (
    STDERR_TAIL_LINES,
    cause_line,
    encode_timeout,
    parse_progress,
    run_ffmpeg,
)
from transcoder.errors import EncodeError, EncodeTimeout

FFMPEG = ["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning"]

# Two blocks as ffmpeg 5.1 writes them with `-progress pipe:1`, then the final one.
PROGRESS = """\
frame=12
fps=0.00
stream_0_0_q=28.0
bitrate=N/A
total_size=48
out_time_us=500000
out_time_ms=500000
out_time=00:00:00.500000
dup_frames=0
drop_frames=0
speed=N/A
progress=continue
frame=25
fps=24.10
stream_0_0_q=28.0
bitrate=  37.2kbits/s
total_size=4651
out_time_us=1000000
out_time_ms=1000000
out_time=00:00:01.000000
dup_frames=0
drop_frames=0
speed=1.93x
progress=continue
frame=50
out_time_us=1960000
out_time=00:00:01.960000
progress=end
"""


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen]:
    """Every process run_ffmpeg starts during the test, to check none is left running."""
    procs: list[subprocess.Popen] = []

    class Recorded(subprocess.Popen):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            procs.append(self)

    monkeypatch.setattr(subprocess, "Popen", Recorded)
    return procs


def assert_gone(proc: subprocess.Popen) -> None:
    """The process has exited, was reaped, and its process group is empty."""
    assert proc.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)


def slow_lavfi(seconds: int) -> list[str]:
    """An ffmpeg run that takes about `seconds` of wall time (`-re` reads at native rate)."""
    source = f"testsrc2=s=32x32:r=10:d={seconds}"
    return [*FFMPEG, "-progress", "pipe:1", "-re", "-f", "lavfi", "-i", source, "-f", "null", "-"]


def test_progress_text_gives_one_fraction_per_block_ending_at_one():
    fractions = list(parse_progress(PROGRESS.splitlines(keepends=True), duration=2.0))

    assert fractions == [0.25, 0.5, 1.0]


def test_progress_without_known_duration_reports_zero_until_the_end():
    assert list(parse_progress(PROGRESS.splitlines(), duration=0.0)) == [0.0, 0.0, 1.0]


@pytest.mark.parametrize(
    ("value", "expected"), [("N/A", 0.25), ("-64000", 0.0), ("9000000", 1.0), ("", 0.25)]
)
def test_progress_ignores_unknown_times_and_clamps_to_zero_and_one(value, expected):
    lines = ["out_time_us=500000", "progress=continue", f"out_time_us={value}", "progress=continue"]

    *_, last = parse_progress(lines, duration=2.0)

    assert last == expected


def test_encode_timeout_grows_with_media_duration():
    assert encode_timeout(10.0, base=120, factor=12) == 240
    assert encode_timeout(-1.0, base=120, factor=12) == 120


def test_real_encode_reports_progress_ending_at_one(tmp_path: Path, started):
    output = tmp_path / "out.mp4"
    args = [
        *FFMPEG,
        "-progress",
        "pipe:1",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=64x48:r=25:d=1",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-y",
        f"file:{output}",
    ]
    reported: list[float] = []

    result = run_ffmpeg(args, timeout=30, duration=1.0, on_progress=reported.append)

    assert result.exit_code == 0
    assert output.stat().st_size > 0
    assert reported[-1] == 1.0
    assert reported == sorted(reported)
    assert all(0.0 <= f <= 1.0 for f in reported)
    [proc] = started
    assert_gone(proc)


def test_failing_ffmpeg_raises_encode_error_with_exit_code_and_stderr_tail(started):
    args = [*FFMPEG, "-f", "lavfi", "-i", "testsrc2=d=0.1", "-c:v", "no_such_encoder", "-f", "null"]

    with pytest.raises(EncodeError) as caught:
        run_ffmpeg([*args, "-"], timeout=30)

    error = caught.value
    assert not isinstance(error, EncodeTimeout)
    assert not error.transient
    assert error.exit_code == 1
    assert "exit code 1" in error.reason
    assert "no_such_encoder" in error.reason
    assert "Unknown encoder 'no_such_encoder'" in error.detail
    [proc] = started
    assert_gone(proc)


def test_stderr_tail_on_the_error_is_bounded_and_keeps_the_last_lines():
    # showinfo logs a line per frame (50 of them); select=0 then drops every frame, so the
    # run ends in an "Empty output" failure after far more stderr than the tail keeps.
    args = [*FFMPEG, "-loglevel", "info", "-abort_on", "empty_output"]
    args += ["-f", "lavfi", "-i", "testsrc2=s=32x32:r=50:d=1"]
    args += ["-vf", "showinfo,select=0", "-f", "null", "-"]

    with pytest.raises(EncodeError) as caught:
        run_ffmpeg(args, timeout=30)

    lines = caught.value.detail.splitlines()
    assert len(lines) == STDERR_TAIL_LINES
    assert lines[-2:] == ["Empty output", "Conversion failed!"]
    assert caught.value.reason.endswith("Conversion failed!")


def test_too_short_timeout_raises_encode_timeout_and_kills_ffmpeg(started):
    begun = time.monotonic()

    with pytest.raises(EncodeTimeout) as caught:
        run_ffmpeg(slow_lavfi(8), timeout=1, duration=8.0)

    assert time.monotonic() - begun < 5
    assert caught.value.transient
    assert "timed out after 1 s" in caught.value.reason
    assert caught.value.exit_code == -9
    [proc] = started
    assert_gone(proc)


def test_error_in_progress_callback_stops_ffmpeg_and_propagates(started):
    def refuse(fraction: float) -> None:
        raise RuntimeError("job cancelled")

    begun = time.monotonic()

    with pytest.raises(RuntimeError, match="job cancelled"):
        run_ffmpeg(slow_lavfi(8), timeout=30, duration=8.0, on_progress=refuse)

    assert time.monotonic() - begun < 5
    [proc] = started
    assert_gone(proc)


def test_cause_line_skips_the_consequences_to_name_the_cause():
    tail = "\n".join(
        [
            "[libx264 @ 0x55] width not divisible by 2 (61201x240)",
            "Error initializing output stream 0:0 -- Error while opening encoder",
            "Conversion failed!",
            "2 frames left in the queue on closing",
        ]
    )

    assert cause_line(tail) == "Error initializing output stream 0:0 -- Error while opening encoder"


def test_ffmpeg_dies_with_the_process_that_started_it(tmp_path):
    marker = tmp_path / "orphan-check.mkv"
    script = (
        "from transcoder.encode.runner import run_ffmpeg\n"
        "run_ffmpeg(['ffmpeg', '-nostdin', '-re', '-f', 'lavfi', '-i', 'testsrc2=s=64x48:d=60',"
        f" '-progress', 'pipe:1', '-y', {str(marker)!r}], timeout=120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 20
    while not _ffmpeg_writing(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _ffmpeg_writing(marker), "ffmpeg did not start"

    parent.kill()  # SIGKILL: no chance to clean up
    parent.wait()
    deadline = time.monotonic() + 5
    while _ffmpeg_writing(marker) and time.monotonic() < deadline:
        time.sleep(0.1)

    assert not _ffmpeg_writing(marker)


def _ffmpeg_writing(path) -> bool:
    done = subprocess.run(["pgrep", "-f", str(path)], capture_output=True)
    return done.returncode == 0
