"""Engines and sessions for the configured database."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

from transcoder.db import models  # noqa: F401  (registers the tables)

log = logging.getLogger("transcoder.db")
_schema_lock = threading.Lock()
_schema_ready: set[Engine] = set()


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
        engine = create_engine(url, pool_pre_ping=True)
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


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _forget_pool_in_child(engine: Engine) -> None:
    """After fork (RQ's work horse) a child must not reuse the parent's connections."""
    engine.dispose(close=False)
