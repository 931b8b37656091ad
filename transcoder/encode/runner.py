"""Run one ffmpeg process: progress from `-progress pipe:1`, a hard timeout, a bounded stderr tail.

ffmpeg-python has no timeout, so it only builds the argument lists; this module owns the
process. ffmpeg runs in its own process group so a timeout or a cancel kills it and
anything it started, and on Linux it is killed by the kernel if the thread that started it
dies (a killed worker must not leave an encode running on its own).
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import ctypes.util
import logging
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from transcoder.errors import Cancelled, EncodeError, EncodeKilled, EncodeTimeout

log = logging.getLogger("transcoder.encode")

STDERR_TAIL_LINES = 40
ProgressCallback = Callable[[float], None]

# Lines ffmpeg prints after the real error, which say nothing about the cause.
_CONSEQUENCES = (
    "Conversion failed",
    "frames left in the queue",
    "Error marking filters as finished",
    "Error while filtering",
    "Error sending frames to consumers",
    "Exiting normally",
    "Terminating thread with return code",
    "Finishing stream",
)
_ERROR_WORDS = ("rror", "nvalid", "out of range", "not supported", "unsupported", "failed")

_running: dict[int, subprocess.Popen] = {}
_running_lock = threading.Lock()
_stopping = threading.Event()


@dataclass
class RunResult:
    """What a finished ffmpeg run left behind."""

    exit_code: int
    seconds: float
    stderr_tail: str


def encode_timeout(duration: float, *, base: float, factor: float) -> float:
    """Seconds one encode may take: a fixed allowance plus a multiple of the media duration."""
    return base + factor * max(duration, 0.0)


def run_ffmpeg(
    args: list[str],
    *,
    timeout: float,
    duration: float = 0.0,
    on_progress: ProgressCallback | None = None,
    memory_mb: int = 0,
) -> RunResult:
    """Run ffmpeg to completion; raise EncodeError on failure, EncodeTimeout when too slow.

    `memory_mb` caps ffmpeg's address space (0: no cap), so one hostile input cannot take
    the memory of every job on the machine.
    """
    log.debug("running %s", subprocess.list2cmdline(args))
    started = time.monotonic()
    with _running_lock:
        if _stopping.is_set():
            raise Cancelled("stopped before it started: the process is shutting down")
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_child_setup(os.getpid(), memory_mb),
        )
        _running[proc.pid] = proc
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
    reader = threading.Thread(target=_drain, args=(proc.stderr, tail), daemon=True)
    reader.start()
    timer = threading.Timer(timeout, _kill_group, args=(proc,))
    timer.daemon = True
    timer.start()
    try:
        for fraction in parse_progress(_lines(proc.stdout), duration):
            if on_progress:
                on_progress(fraction)
        exit_code = proc.wait()
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    finally:
        with _running_lock:
            _running.pop(proc.pid, None)
        timer.cancel()
        reader.join(timeout=5)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()

    seconds = time.monotonic() - started
    stderr_tail = "\n".join(tail)
    if exit_code != 0 and _stopping.is_set():
        raise Cancelled("stopped while running: the process was shutting down", detail=stderr_tail)
    if exit_code != 0 and seconds >= timeout:
        raise EncodeTimeout(
            f"ffmpeg timed out after {timeout:.0f} s", detail=stderr_tail, exit_code=exit_code
        )
    if exit_code < 0:
        name = signal.Signals(-exit_code).name if -exit_code in signal.valid_signals() else ""
        raise EncodeKilled(
            f"ffmpeg was killed by signal {-exit_code} {name}".rstrip()
            + " (out of memory, or stopped from outside)",
            detail=stderr_tail,
            exit_code=exit_code,
        )
    if exit_code != 0:
        raise EncodeError(
            f"ffmpeg failed (exit code {exit_code}): {cause_line(stderr_tail)}",
            detail=stderr_tail,
            exit_code=exit_code,
        )
    return RunResult(exit_code=exit_code, seconds=seconds, stderr_tail=stderr_tail)


def parse_progress(lines: Iterable[str], duration: float) -> Iterable[float]:
    """Turn ffmpeg's key=value progress blocks into fractions done (0..1), one per block."""
    done = 0.0
    for line in lines:
        key, _, value = line.strip().partition("=")
        if key == "out_time_us" and value.lstrip("-").isdigit() and duration > 0:
            done = min(1.0, max(0.0, int(value) / 1_000_000 / duration))
        elif key == "progress":
            yield 1.0 if value == "end" else done


def stop_all() -> int:
    """Kill every ffmpeg this process runs and refuse to start more; return how many."""
    with _running_lock:
        _stopping.set()
        procs = list(_running.values())
    for proc in procs:
        _kill_group(proc)
    return len(procs)


def kill_process_group(pid: int) -> None:
    """Kill a process group started by run_ffmpeg (used by cancellation)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        kill_process_group(proc.pid)


def _lines(stream) -> Iterable[str]:
    for raw in iter(stream.readline, b""):
        yield raw.decode("utf-8", "replace")


def _drain(stream, tail: collections.deque[str]) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip()
        if line:
            tail.append(line)
            log.debug("ffmpeg: %s", line)


def cause_line(text: str) -> str:
    """The line of ffmpeg's stderr most likely to name the cause: the first error that is not
    merely a consequence of an earlier one, else the last line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in lines:
        if any(w in line for w in _ERROR_WORDS) and not any(c in line for c in _CONSEQUENCES):
            return line
    return lines[-1] if lines else "no error output"


def _child_setup(parent: int, memory_mb: int) -> Callable[[], None]:
    """A preexec hook: die with the parent thread (Linux), and cap the address space."""
    limit = memory_mb * 1024 * 1024

    def hook() -> None:
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:  # the parent died before the request was in place
                os._exit(1)
        if limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return hook


def _load_prctl():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):
        return None


_PR_SET_PDEATHSIG = 1
_prctl = _load_prctl() if sys.platform.startswith("linux") else None
