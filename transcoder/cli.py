"""The `transcoder` command: transcode locally, submit to the farm, run a worker, show a video."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from transcoder import logs, webhooks
from transcoder.cli_output import export, print_outputs, show_progress
from transcoder.db import records
from transcoder.db.engine import session_scope
from transcoder.db.models import FINAL_VIDEO, Video, VideoStatus
from transcoder.encode.runner import stop_all
from transcoder.errors import NotFound, TranscoderError
from transcoder.queue.context import Context, build_context, install
from transcoder.settings import Settings
from transcoder.submit import accept_file, submit_file

WEBHOOK_WAIT = 30  # seconds a finished CLI run waits for its webhook deliveries
console = Console(stderr=True)
out = Console()


@click.group()
@click.option(
    "-v", "--verbose", count=True, help="-v for INFO logs, -vv for DEBUG (ffmpeg output)."
)
@click.pass_context
def main(click_ctx: click.Context, verbose: int) -> None:
    """Self-hosted video transcoding farm."""
    logs.configure([logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)])
    click_ctx.obj = verbose


@main.command()
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--profile", help="Built-in profile name or path to a profile TOML file.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Where to put the outputs.",
)
def transcode(source: Path, profile: str | None, out_dir: Path) -> None:
    """Transcode SOURCE here and now (no server needed) and copy the outputs to --out."""
    ctx = install(build_context(_settings(redis_url="")))
    try:
        video_id = accept_file(ctx, source, profile=profile)
    except TranscoderError as exc:
        _fail(exc.reason)

    crash: list[BaseException] = []

    def run() -> None:
        try:
            ctx.dispatcher.start(video_id)
        except Exception as exc:  # the thread's boundary: report it below, never silently
            logging.getLogger("transcoder.cli").exception("transcode of %s crashed", video_id)
            crash.append(exc)

    worker = threading.Thread(target=run, name="transcode", daemon=True)
    worker.start()
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        show_progress(ctx, video_id, worker, console)
    except KeyboardInterrupt:
        _interrupted(ctx, video_id, worker)
    if crash:
        _fail(f"internal error: {crash[0]}", video_id)
    video = _load(ctx, video_id)
    if video.status != VideoStatus.SUCCEEDED:
        webhooks.wait_inline(WEBHOOK_WAIT)
        _fail(video.error or f"video ended {video.status}", video_id)
    webhooks.wait_inline(WEBHOOK_WAIT)
    files = export(ctx, video_id, out_dir)
    print_outputs(ctx, video_id, out)
    console.print(f"video {video_id}: {len(files)} files in {out_dir}/")


@main.command()
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--profile", help="Built-in profile name or path to a profile TOML file.")
def submit(source: Path, profile: str | None) -> None:
    """Submit SOURCE to the farm (RQ when REDIS_URL is set, else run inline); print its id."""
    ctx = install(build_context(_settings()))
    try:
        video_id = submit_file(ctx, source, profile=profile)
    except TranscoderError as exc:
        _fail(exc.reason)
    out.print(video_id)


@main.command()
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--name", help="Worker name (defaults to RQ's).")
def worker(burst: bool, name: str | None) -> None:
    """Run an RQ worker on the farm's queues."""
    from transcoder.queue.worker import run_worker

    logs.configure(logging.INFO)
    try:
        run_worker(_settings(), burst=burst, name=name)
    except TranscoderError as exc:
        _fail(exc.reason)


@main.command()
@click.argument("video_id")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
def status(video_id: str, as_json: bool) -> None:
    """Show a video's status and its renditions."""
    ctx = build_context(_settings())
    try:
        video = _load(ctx, video_id)
    except NotFound as exc:
        _fail(exc.reason)
    with session_scope(ctx.engine) as session:
        renditions = records.renditions_of(session, video_id)
        preview = records.preview_of(session, video_id)
    if as_json:
        doc = video.model_dump(mode="json")
        doc["renditions"] = [r.model_dump(mode="json", exclude={"plan"}) for r in renditions]
        doc["preview"] = preview.model_dump(mode="json", exclude={"plan"}) if preview else None
        out.print_json(json.dumps(doc))
        return
    out.print(
        Text(f"video {video.id} ({video.source_name}): "),
        Text(str(video.status), style="bold"),
        f"{video.progress:.0%}",
    )
    if video.error:
        out.print(Text(f"error: {video.error}"))
    print_outputs(ctx, video_id, out)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def api(host: str, port: int) -> None:
    """Serve the HTTP API, its docs (/docs) and the web page (/ui/)."""
    import uvicorn

    from transcoder.api import create_app

    logs.configure(logging.INFO)
    try:
        app = create_app(_settings())
    except TranscoderError as exc:
        _fail(exc.reason)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9181, show_default=True, type=int)
def dashboard(host: str, port: int) -> None:
    """Run rq-dashboard on the farm's Redis (it has no login: keep it on loopback)."""
    settings = _settings()
    if settings.embedded:
        _fail("REDIS_URL is not set; the dashboard shows the Redis queues")
    try:
        from rq_dashboard.cli import run
    except ImportError:
        _fail("rq-dashboard is not installed: pip install -e '.[dashboard]'")
    run.main(
        ["--redis-url", settings.redis_url, "--json", "--bind", host, "--port", str(port)],
        standalone_mode=True,
    )


@main.command()
def profiles() -> None:
    """List the built-in profiles and their ladders."""
    from transcoder.profiles import available_profiles, load_profile

    for name in available_profiles():
        p = load_profile(name)
        sizes = ", ".join(r.name for r in p.rungs_by_size)
        out.print(f"{name}: {sizes} in {', '.join(f.name for f in p.formats)}")


# -- helpers ---------------------------------------------------------------------------------


def _settings(**overrides: Any) -> Settings:
    """Settings from the environment; a configuration mistake ends the command in one line."""
    try:
        return Settings(**overrides)
    except TranscoderError as exc:
        _fail(exc.reason)
    except ValidationError as exc:
        first = exc.errors()[0]
        _fail(f"invalid setting {'.'.join(map(str, first['loc']))}: {first['msg']}")
    raise AssertionError("unreachable")


def _fail(reason: str, video_id: str | None = None, *, code: int = 1) -> NoReturn:
    """One line on stderr, never a traceback; the reason is shown as plain text."""
    prefix = f"video {video_id}: " if video_id else ""
    console.print(Text("error:", style="red"), Text(prefix + reason), soft_wrap=True)
    sys.exit(code)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _interrupted(ctx: Context, video_id: str, worker: threading.Thread) -> NoReturn:
    """Ctrl-C or SIGTERM: stop every ffmpeg, let the pipeline record that, and exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    console.print("stopping: killing the running encodes...")
    stop_all()
    worker.join(30)
    with session_scope(ctx.engine) as session:
        video = records.get_video(session, video_id, lock=True)
        if video.status not in FINAL_VIDEO:
            records.set_video_status(video, VideoStatus.ERROR, error="interrupted")
    _fail("interrupted before it finished", video_id, code=130)


def _load(ctx: Context, video_id: str) -> Video:
    with session_scope(ctx.engine) as session:
        return records.get_video(session, video_id)


if __name__ == "__main__":
    main()
