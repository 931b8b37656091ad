"""Running the bench's commands and measuring them: wall and CPU time, peak memory, and how
busy the rest of the machine was meanwhile.

CPU time comes from getrusage(RUSAGE_CHILDREN) deltas, which count every reaped descendant.
Peak memory cannot come from those deltas: ru_maxrss is a high-water mark over the whole
life of this process, and for children it is the largest single descendant, never a sum.
So each child is reaped with wait4 (its own tree's largest process), and /proc is sampled
for the sum over all live descendants.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_INTERVAL = 0.1
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


class CommandFailed(RuntimeError):
    """Raised when a measured command exits non-zero; the message ends with its stderr tail."""


@dataclass
class Sample:
    """One measured run: seconds, megabytes, and the CPUs other processes used meanwhile."""

    wall: float
    cpu: float
    peak_process_mb: float
    peak_tree_mb: float
    other_cpus: float
    processes: int


@dataclass
class Variant:
    """One row of the table: a way of making outputs, run once per round in a scratch dir."""

    key: str
    label: str
    run: Callable[[Path, ChildPeaks], int]
    samples: list[Sample] = field(default_factory=list)
    notes: dict[str, float] = field(default_factory=dict)

    def median(self, name: str) -> float:
        return statistics.median(getattr(s, name) for s in self.samples)


class ChildPeaks:
    """The peak RSS (kB) of each finished child's tree, as wait4 reports it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.kb: list[int] = [0]

    def add(self, kb: int) -> None:
        with self.lock:
            self.kb.append(kb)


def measure(run: Callable[[ChildPeaks], int]) -> Sample:
    """Call `run` (which starts processes and returns how many) and measure what it did."""
    peaks = ChildPeaks()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine_before = busy_cpu_seconds()
    started = time.monotonic()
    with TreeSampler() as sampler:
        processes = run(peaks)
    wall = time.monotonic() - started
    machine = busy_cpu_seconds() - machine_before
    after = resource.getrusage(resource.RUSAGE_CHILDREN)

    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(
        wall=wall,
        cpu=cpu,
        peak_process_mb=max(peaks.kb) / 1024,
        peak_tree_mb=sampler.peak_bytes / 2**20,
        other_cpus=max(0.0, machine - cpu) / wall,
        processes=processes,
    )


def run_process(
    args: list[str], log: Path, peaks: ChildPeaks, env: dict[str, str] | None = None
) -> None:
    """Run one command to completion; reap it with wait4 to learn its tree's peak RSS."""
    with log.open("ab") as err:
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env
        )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    peaks.add(usage.ru_maxrss)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        command = subprocess.list2cmdline(args)
        raise CommandFailed("\n".join([f"exit {proc.returncode}: {command}", *tail]))


def run_all(commands: list[list[str]], width: int, log: Path, peaks: ChildPeaks) -> int:
    """Run the commands in order, `width` at a time; return how many ran."""
    with ThreadPoolExecutor(width) as pool:
        for future in [pool.submit(run_process, c, log, peaks) for c in commands]:
            future.result()
    return len(commands)


class TreeSampler:
    """Sum the RSS of all this process's descendants every SAMPLE_INTERVAL; keep the peak."""

    def __init__(self) -> None:
        self.peak_bytes = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join()

    def _loop(self) -> None:
        root = os.getpid()
        while True:
            self.peak_bytes = max(self.peak_bytes, descendants_rss(root))
            if self.stopping.wait(SAMPLE_INTERVAL):
                return


def descendants_rss(root: int) -> int:
    """Bytes resident in all descendants of `root` right now, read from /proc/*/stat."""
    parent, rss = {}, {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # the process ended between the listing and the read
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parent[int(entry.name)] = int(fields[1])
        rss[int(entry.name)] = int(fields[21]) * PAGE

    total = 0
    for pid, size in rss.items():
        ancestor = parent.get(pid)
        while ancestor and ancestor != root:
            ancestor = parent.get(ancestor)
        total += size if ancestor == root else 0
    return total


def wait_for_quiet(limit: float, threshold: float = 0.25) -> bool:
    """Wait up to `limit` s for a second in which the whole machine used under `threshold` CPUs."""
    deadline = time.monotonic() + limit
    while True:
        before = busy_cpu_seconds()
        time.sleep(1.0)
        if busy_cpu_seconds() - before < threshold:
            return True
        if time.monotonic() >= deadline:
            return False


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot, every process included."""
    line = Path("/proc/stat").read_text().split("\n", 1)[0]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, line.split()[1:9])
    return (user + nice + system + irq + softirq + steal) / TICK
