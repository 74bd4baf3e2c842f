"""Where genperf keeps samples and task records.

``open_store(settings)`` gives the store the settings name: a :class:`SqlStore` on SQLite
(the default, a file in the data directory) or PostgreSQL, or a :class:`MemoryStore` for the
URL ``memory://`` (persistence off). Every store obeys the :class:`Store` protocol.

SQLAlchemy and Alembic load on first use of :class:`SqlStore`, :func:`upgrade_database` or
:func:`open_store` with a database URL, so a monitor with persistence off never imports them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from genperf.config import Settings
from genperf.errors import StoreError
from genperf.storage.base import SampleQuery, Store, TaskQuery
from genperf.storage.memory import MemoryStore

if TYPE_CHECKING:
    from genperf.storage.migrate import upgrade_database
    from genperf.storage.sql import SqlStore

logger = logging.getLogger("genperf.storage")

MEMORY_URL = "memory://"


def open_store(url_or_settings: str | Settings) -> Store:
    """The store for a database URL, or for ``Settings.resolved_database_url``.

    Raises:
        StoreUnavailableError: the database cannot be reached.
        StoreError: the URL is not supported, or the schema cannot be brought up to date.
    """
    if isinstance(url_or_settings, Settings):
        url = url_or_settings.resolved_database_url
    else:
        url = url_or_settings
    if url == MEMORY_URL:
        return MemoryStore()
    from genperf.storage.sql import SqlStore

    store = SqlStore(url)
    if isinstance(url_or_settings, Settings):
        try:  # a new database rolls up from its first task
            store.start_rollups(url_or_settings)
        except StoreError as exc:  # reads stay exact without roll-ups, only slower
            logger.warning("roll-ups not started on %s: %s", store.url, exc)
    return store


def __getattr__(name: str) -> Any:
    if name == "SqlStore":
        from genperf.storage.sql import SqlStore

        return SqlStore
    if name == "upgrade_database":
        from genperf.storage.migrate import upgrade_database

        return upgrade_database
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MEMORY_URL",
    "MemoryStore",
    "SampleQuery",
    "SqlStore",
    "Store",
    "TaskQuery",
    "open_store",
    "upgrade_database",
]
