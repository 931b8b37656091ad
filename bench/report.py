"""Printing the bench's results: the header, the table with its ratios, and the experiment."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from commands import Bench
from procs import SAMPLE_INTERVAL, Variant

# The measurement behind Settings.threads_per_job: two VP8 encodes side by side on 2 cores,
# default threading against -threads 1 (wall, CPU).
CLAIMED_THREADING_COST = (3.3, 3.7)
COMPARED_WITH_FARM = ("seq", "par", "farmcmd")


def print_header(bench: Bench, repeat: int) -> None:
    version = subprocess.run(
        [bench.ffmpeg, "-version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    size_mb = bench.source.stat().st_size / 2**20
    print(f"CPUs usable (sched_getaffinity): {len(os.sched_getaffinity(0))}")
    print(version)
    print(f"input: {bench.source} ({size_mb:.1f} MB)")
    print(
        f"plan: {', '.join(p.name for p in bench.renditions)}, poster at {bench.preview.position} s"
    )
    print(f"farm: embedded, {bench.slots} jobs side by side, {bench.threads} ffmpeg thread(s) each")
    print(f"load average before: {load_average()}; {repeat} run(s) per row, medians shown")
    print(flush=True)


def print_table(variants: list[Variant]) -> None:
    farm = variants[0]
    header = (
        f"{'variant':<38} {'procs':>5} {'wall s':>7} {'CPU s':>7} {'CPU/wall':>8} "
        f"{'proc MB':>7} {'tree MB':>7} {'other':>5}  {'farm/this: wall':>15} "
        f"{'CPU':>5}"
    )
    print(header)
    print("-" * len(header))
    for v in variants:
        wall, cpu = v.median("wall"), v.median("cpu")
        ratios = ""
        if v.key in COMPARED_WITH_FARM:
            ratios = f"{farm.median('wall') / wall:>15.2f} {farm.median('cpu') / cpu:>5.2f}"
        print(
            f"{v.label:<38} {v.samples[0].processes:>5} {wall:>7.2f} {cpu:>7.2f} "
            f"{cpu / wall:>8.2f} {v.median('peak_process_mb'):>7.0f} "
            f"{v.median('peak_tree_mb'):>7.0f} {v.median('other_cpus'):>5.2f}  {ratios}"
        )
    if len(farm.samples) > 1:
        print()
        print("each run, in order, as wall s / CPU s (other); the spread shows the noise:")
        for v in variants:
            runs = "  ".join(f"{s.wall:.2f}/{s.cpu:.2f} ({s.other_cpus:.2f})" for s in v.samples)
            print(f"  {v.label:<38} {runs}")
    print()
    print("procs: processes the bench started (the farm's ffmpeg runs are its grandchildren).")
    print("CPU s: user+sys of the whole process tree, from getrusage(RUSAGE_CHILDREN) deltas.")
    print("proc MB: peak RSS of the largest single process; ru_maxrss of reaped children is the")
    print("  max of any one descendant, never a sum. tree MB: peak of the summed RSS of all live")
    print(f"  descendants, sampled every {SAMPLE_INTERVAL * 1000:.0f} ms.")
    print("other: CPUs kept busy by processes outside this bench, on average over the run")
    print("  (above ~0.2 the machine was shared and wall times are inflated).")


def print_farm_timings(farm: Variant) -> None:
    t = farm.notes
    if not t:
        return
    print()
    print(
        f"farm, last run, from its records: video started->finished {t['video']:.2f} s, "
        f"first task start->last task end {t['tasks']:.2f} s, ffmpeg time of the "
        f"renditions summed {t['ffmpeg']:.2f} s"
    )


def print_threading(bench: Bench, variants: list[Variant]) -> None:
    rows = {v.key: v for v in variants}
    claimed_wall, claimed_cpu = CLAIMED_THREADING_COST
    print()
    print("threading experiment, default threading divided by -threads 1:")
    pair = f"two {bench.vp8_plan.name} encodes side by side"
    for count, words in (("x2", pair), ("x1", "one alone")):
        default, single = rows[f"vp8{count}-default"], rows[f"vp8{count}-single"]
        wall = default.median("wall") / single.median("wall")
        cpu = default.median("cpu") / single.median("cpu")
        print(f"  {words}: {wall:.2f}x the wall, {cpu:.2f}x the CPU")
    print(
        f"  (the measurement behind the farm's thread shares, two side by side on 2 cores: "
        f"~{claimed_wall}x the wall, ~{claimed_cpu}x the CPU)"
    )


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
