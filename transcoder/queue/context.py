"""What a job needs from its process: settings, the database engine, storage and a dispatcher.

Jobs receive only ids, so each process builds one Context from its settings (the
environment, by default) the first time a job asks for it. Entry points and tests may
install one explicitly instead.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from transcoder.db.engine import get_engine
from transcoder.settings import Settings
from transcoder.storage import Storage, make_storage

if TYPE_CHECKING:
    from transcoder.queue.dispatch import Dispatcher


@dataclass
class Context:
    settings: Settings
    engine: Engine
    storage: Storage
    dispatcher: Dispatcher


_lock = threading.Lock()
_current: Context | None = None


def build_context(settings: Settings) -> Context:
    from transcoder.queue.dispatch import make_dispatcher

    return Context(
        settings=settings,
        engine=get_engine(settings.resolved_database_url),
        storage=make_storage(settings),
        dispatcher=make_dispatcher(settings),
    )


def install(context: Context) -> Context:
    global _current
    with _lock:
        _current = context
    return context


def uninstall() -> None:
    """Forget the installed context (the next job builds one from the environment)."""
    global _current
    with _lock:
        _current = None


def current() -> Context:
    global _current
    with _lock:
        if _current is None:
            _current = build_context(Settings())
        return _current
