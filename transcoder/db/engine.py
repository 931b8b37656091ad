"""Engines and sessions for the configured database."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlmodel import Session, SQLModel, create_engine

from transcoder.db import models  # noqa: F401  (registers the tables)

log = logging.getLogger("transcoder.db")
_schema_lock = threading.Lock()
_schema_ready: set[Engine] = set()

T = TypeVar("T")

# What the database raises when it cannot be reached or drops the connection (and for
# deadlocks and serialisation failures, which are worth another try as well).
DISCONNECTS = (OperationalError, InterfaceError)
RETRY_SECONDS = 60.0


def normalize_url(url: str) -> str:
    """Plain postgres URLs use the psycopg2 driver this package depends on."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url.removeprefix(scheme)
    return url


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One engine per URL per process; tables are created by the first session."""
    url = normalize_url(url)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        # A database host that stops answering must not hang a connect for minutes.
        engine = create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    os.register_at_fork(after_in_child=lambda: _forget_pool_in_child(engine))
    return engine


def add_missing_columns(engine: Engine) -> list[str]:
    """Bring a database made by an older version up to date by adding new columns.

    Only additive changes are handled: each missing column is added as nullable, so rows
    written before it read back as NULL.
    TODO(a migration tool such as Alembic): renames, type changes and drops.
    """
    inspector = inspect(engine)
    added = []
    with engine.begin() as conn:
        for table in SQLModel.metadata.sorted_tables:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                kind = column.type.compile(dialect=engine.dialect)
                conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))
                added.append(f"{table.name}.{column.name}")
    if added:
        log.warning("database upgraded: added columns %s", ", ".join(added))
    return added


def ensure_schema(engine: Engine) -> None:
    """Create missing tables and columns, once per engine and process.

    Done on first use rather than at start-up, so a service whose database is down starts
    anyway and answers 503 until the database is back.
    """
    if engine in _schema_ready:
        return
    with _schema_lock:
        if engine not in _schema_ready:
            SQLModel.metadata.create_all(engine)
            add_missing_columns(engine)
            _schema_ready.add(engine)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    ensure_schema(engine)
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def with_retries(
    fn: Callable[[], T],
    *,
    budget: float = RETRY_SECONDS,
    wait: float = 0.5,
    max_wait: float = 8.0,
    what: str = "database write",
) -> T:
    """Call fn, and again with doubling pauses while the database is unreachable.

    Only DISCONNECTS are retried, for `budget` seconds in all; then the last one is raised.
    fn must be safe to repeat: typically one transaction that sets fields on a row.
    """
    deadline = time.monotonic() + budget
    attempt = 1
    while True:
        try:
            return fn()
        except DISCONNECTS as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            pause = min(wait * 2 ** (attempt - 1), max_wait, left)
            log.warning(
                "%s failed (attempt %d), retrying in %.1f s: %s",
                what,
                attempt,
                pause,
                disconnect_reason(exc),
            )
            time.sleep(pause)
            attempt += 1


def disconnect_reason(exc: OperationalError | InterfaceError) -> str:
    """The driver's first line (without the SQL and its parameters SQLAlchemy appends)."""
    message = str(exc.orig or exc).strip()
    return message.splitlines()[0] if message else type(exc).__name__


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _fresh_lock_in_child() -> None:
    """A child forked while another thread held the schema lock must not inherit it held."""
    global _schema_lock
    _schema_lock = threading.Lock()


os.register_at_fork(after_in_child=_fresh_lock_in_child)


def _forget_pool_in_child(engine: Engine) -> None:
    """After fork (RQ's work horse) a child must not reuse the parent's connections."""
    engine.dispose(close=False)
