"""Schema migrations: Alembic, configured in code, run when a store opens.

The scripts ship inside the package (``genperf/storage/migrations``), found through
``importlib.resources``, so an installed wheel migrates its database with no alembic.ini.
Genperf keeps its own version table, so a service that shares the database may run Alembic
for its own tables too.

To write a new revision (developers)::

    from alembic import command
    from genperf.storage.migrate import alembic_config
    command.revision(alembic_config("sqlite:////tmp/dev.db"), "what changes", autogenerate=True)
"""

from __future__ import annotations

import functools
import logging

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, text

from genperf.errors import StoreError
from genperf.storage.engine import SQLITE_BEGIN, make_engine, store_errors
from genperf.storage.schema import VERSION_TABLE

logger = logging.getLogger("genperf.storage")

SCRIPT_LOCATION = "genperf.storage:migrations"
# Any fixed 64-bit number: the PostgreSQL advisory lock that serialises concurrent upgrades.
_PG_LOCK_KEY = 0x67656E70657266  # "genperf"


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic Config for genperf's scripts, on ``connection`` or else on ``url``."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


@functools.cache
def head_revision() -> str | None:
    """The newest revision this genperf knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, or None when genperf never migrated it."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade_database(target: str | Engine) -> None:
    """Bring the database to the newest schema (``alembic upgrade head``). Idempotent.

    At head it costs one small query. Concurrent callers (several worker processes opening
    one database) are serialised by a lock, and the upgrade runs in one transaction, so it
    is applied once and entirely or not at all.

    Raises:
        StoreUnavailableError: the database cannot be reached or is locked.
        StoreError: the migration failed, or the database is newer than this genperf.
    """
    engine = make_engine(target) if isinstance(target, str) else target
    url = engine.url.render_as_string(hide_password=True)
    try:
        with (
            store_errors("upgrade the database schema", url),
            engine.connect() as connection,
        ):
            connection.execution_options(**{SQLITE_BEGIN: "BEGIN IMMEDIATE"})
            with connection.begin():
                _lock(connection)
                before = current_revision(connection)
                if before == head_revision():
                    return
                if before is not None and not _known(before):
                    raise StoreError(
                        f"the database {url} is at schema revision {before!r}, which this "
                        f"genperf does not know (its newest is {head_revision()!r}): "
                        "a newer genperf migrated it; upgrade genperf"
                    )
                command.upgrade(alembic_config(connection=connection), "head")
            logger.info("database %s upgraded from %s to %s", url, before, head_revision())
    finally:
        if isinstance(target, str):
            engine.dispose()


def _known(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


def _lock(connection: Connection) -> None:
    # SQLite: BEGIN IMMEDIATE already holds the write lock. PostgreSQL: a transaction-scoped
    # advisory lock, released at commit; the second caller then finds the schema at head.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
