"""The preview: one frame taken with ffmpeg, made into a JPEG poster and thumbnails by Pillow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from transcoder.encode.command import poster_command
from transcoder.encode.runner import run_ffmpeg
from transcoder.errors import EncodeError
from transcoder.profiles.plan import PreviewPlan

FRAME_TIMEOUT = 120


@dataclass
class PreviewImage:
    """One JPEG of the preview set."""

    kind: str
    path: Path
    width: int
    height: int


def make_preview(
    plan: PreviewPlan,
    source: Path,
    workdir: Path,
    *,
    threads: int,
    ffmpeg_bin: str = "ffmpeg",
    memory_mb: int = 0,
) -> list[PreviewImage]:
    """Write poster.jpg and thumb-<size>.jpg (long side at most size) into `workdir`.

    Returns the images, poster first.
    """
    frame = workdir / "frame.png"
    _grab_frame(plan, source, frame, threads=threads, ffmpeg_bin=ffmpeg_bin, memory_mb=memory_mb)

    images = []
    with Image.open(frame) as img:
        rgb = img.convert("RGB")
    images.append(_save(rgb, workdir / "poster.jpg", "poster", plan.spec.quality))
    for size in sorted(plan.spec.thumbnails, reverse=True):
        thumb = rgb.copy()
        thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
        kind = f"thumb-{size}"
        images.append(_save(thumb, workdir / f"{kind}.jpg", kind, plan.spec.quality))
    frame.unlink(missing_ok=True)
    return images


def _grab_frame(
    plan: PreviewPlan, source: Path, frame: Path, *, threads: int, ffmpeg_bin: str, memory_mb: int
) -> None:
    """Take the frame at the planned position, or the first frame if the seek finds none."""
    for position in (plan.position, 0.0):
        frame.unlink(missing_ok=True)
        attempt = plan.model_copy(update={"position": position})
        args = poster_command(attempt, source, frame, threads=threads, ffmpeg_bin=ffmpeg_bin)
        run_ffmpeg(args, timeout=FRAME_TIMEOUT, memory_mb=memory_mb)
        if frame.is_file() and frame.stat().st_size > 0:
            return
    raise EncodeError("could not decode any frame of the video for the poster")


def _save(img: Image.Image, path: Path, kind: str, quality: int) -> PreviewImage:
    img.save(path, "JPEG", quality=quality, optimize=True, progressive=True)
    return PreviewImage(kind=kind, path=path, width=img.width, height=img.height)
