"""Alembic environment for genperf's schema.

genperf runs it through :func:`genperf.storage.migrate.upgrade_database`, which hands over an
open connection inside a transaction; with only a URL (developers writing revisions) it makes
its own engine. There is no offline (``--sql``) mode: adopting a service's table inspects the
live database.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from genperf.storage.engine import make_engine
from genperf.storage.schema import VERSION_TABLE, metadata


def run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
    with context.begin_transaction():  # a no-op inside the caller's transaction
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("genperf migrations need a live database (no --sql mode)")
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.begin() as connection:
            run(connection)
    finally:
        engine.dispose()


main()
