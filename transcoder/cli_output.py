"""What the CLI shows and writes: progress bars, the table of outputs, the exported files."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from transcoder.db import records
from transcoder.db.engine import session_scope
from transcoder.db.models import TaskStatus
from transcoder.queue.context import Context


def show_progress(ctx: Context, video_id: str, worker: threading.Thread, console: Console) -> None:
    """Poll the records while the pipeline runs; one bar per rendition."""
    columns = (
        TextColumn("{task.description:<14}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    bars: dict[str, TaskID] = {}
    with Progress(*columns, console=console, transient=False) as progress:
        while worker.is_alive():
            worker.join(0.3)
            with session_scope(ctx.engine) as session:
                for r in records.renditions_of(session, video_id):
                    if r.id not in bars:
                        bars[r.id] = progress.add_task(r.name, total=1.0)
                    done = 1.0 if r.status == TaskStatus.SUCCEEDED else r.progress
                    progress.update(bars[r.id], completed=done)


def export(ctx: Context, video_id: str, out_dir: Path) -> list[Path]:
    """Copy the video's renditions and preview images from storage into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with session_scope(ctx.engine) as session:
        keys = [r.storage_key for r in records.renditions_of(session, video_id) if r.storage_key]
        preview = records.preview_of(session, video_id)
        keys += [img["key"] for img in (preview.images if preview else [])]
    files = []
    for key in keys:
        target = out_dir / key.rsplit("/", 1)[-1]
        fetched = ctx.storage.fetch(key, target)
        if fetched != target:
            shutil.copyfile(fetched, target)
        files.append(target)
    return files


def print_outputs(ctx: Context, video_id: str, out: Console) -> None:
    with session_scope(ctx.engine) as session:
        renditions = records.renditions_of(session, video_id)
        preview = records.preview_of(session, video_id)
    table = Table(title=f"video {video_id}")
    for column in ("output", "status", "size", "dims", "codecs", "kbps", "duration"):
        table.add_column(
            column, justify="right" if column in ("size", "kbps", "duration") else "left"
        )
    for r in renditions:
        name = r.storage_key.rsplit("/", 1)[-1] if r.storage_key else r.name
        table.add_row(
            name,
            str(r.status),
            human(r.size_bytes),
            f"{r.width}x{r.height}",
            "+".join(c for c in (r.video_codec, r.audio_codec) if c),
            str(r.measured_kbps or ""),
            f"{r.duration:.2f}" if r.duration else "",
        )
    for img in preview.images if preview else []:
        name = img["key"].rsplit("/", 1)[-1]
        table.add_row(
            name,
            "succeeded",
            human(img["size_bytes"]),
            f"{img['width']}x{img['height']}",
            "jpeg",
            "",
            "",
        )
    out.print(table)


def human(size: int | None) -> str:
    if size is None:
        return ""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.1f} {unit}"
