"""Writing genperf's records into a service's own ``generation_tasks`` table.

The spec adds its columns to the table the generation service already has (see
``migrations/versions/0001_initial.py``, which adopts it in place). That table has the
service's key (a text task id, or an integer) and may have columns of its own that are NOT
NULL without a default (a prompt, a creation time). So, for such a table:

- a record whose task is already a row of the service (same ``task_id`` column, or the
  service's primary key equal to the task id) and not yet claimed by another run fills that
  row: the spec's six columns and the rest of genperf's;
- a record of a task the service has no row for is a new row with a valid key: the database
  numbers an integer key that numbers itself; otherwise genperf gives one (an integer key:
  the next number; a text key: the task id, or the run id when the task id is taken), and
  every NOT NULL column without a default gets a neutral value of its type (empty text, 0,
  false, the task's start time);
- later versions of the same run update its row by ``run_id``, as in genperf's own table.

A table genperf made itself takes none of this: its rows are written with one upsert.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    Table,
    func,
    insert,
    or_,
    select,
    types,
    update,
)

Row = Mapping[str, Any]
Filler = Callable[[Row], Any]


def filler_for(sql_type: Any) -> Filler | None:
    """A neutral value for a NOT NULL column of this type in a row genperf creates, or None
    when genperf knows no neutral value for it (the table cannot be shared)."""
    try:
        python = sql_type.python_type
    except (NotImplementedError, AttributeError):
        return None
    if python is bool:
        return lambda _: False
    if python in (int, float):
        return lambda _: 0
    if python is str:
        return lambda _: ""
    if python is dt.datetime:
        return lambda row: row.get("started_at")
    if python is dt.date:
        return lambda row: None if row.get("started_at") is None else row["started_at"].date()
    return None


def fills_itself(column: Column[Any], dialect: str) -> bool:
    """Whether the database gives this column a value when an insert leaves it out (a key
    must have one even where the database would take NULL: SQLite's non-integer keys)."""
    if column.server_default is not None:
        return True
    if column.identity is not None or column.computed is not None:
        return True
    if not column.primary_key:
        return bool(column.nullable)
    if len(column.table.primary_key.columns) != 1:
        return False
    if column.autoincrement is True:
        return True
    # SQLite: an "INTEGER PRIMARY KEY" is the rowid and numbers itself.
    return dialect == "sqlite" and str(column.type).upper() == "INTEGER"


class ServiceTable:
    """The service's ``generation_tasks`` as it is in the database, and how to write into it.

    Args:
        table: the reflected table (the service's columns and genperf's).
        ours: the names of the columns genperf writes.
        dialect: the database's dialect name.
    """

    def __init__(self, table: Table, ours: set[str], dialect: str) -> None:
        self.table = table
        self._dialect = dialect
        keys = list(table.primary_key.columns)
        self._key = keys[0] if len(keys) == 1 else None
        self._fillers: dict[str, Filler] = {}
        for column in table.columns:
            if column.name in ours or fills_itself(column, dialect):
                continue
            if column is self._key:
                continue  # given by _new_key
            filler = filler_for(column.type)
            if filler is not None:
                self._fillers[column.name] = filler

    @classmethod
    def reflect(cls, engine: Engine, schema: Table) -> ServiceTable | None:
        """The table if it is a service's (it has columns genperf does not write besides an
        integer ``id`` that numbers itself), None for a table genperf made (``schema``)."""
        ours = {c.name for c in schema.columns if c.name != "id"}
        # genperf's columns keep genperf's types (UTC datetimes); the rest are reflected.
        declared = [Column(c.name, c.type) for c in schema.columns if c.name in ours]
        with engine.connect() as conn:
            table = Table(schema.name, MetaData(), *declared, autoload_with=conn)
        extra = {c.name for c in table.columns} - ours - {"id"}
        key = list(table.primary_key.columns)
        own_key = (
            len(key) == 1
            and key[0].name == "id"
            and fills_itself(key[0], engine.dialect.name)
            and isinstance(key[0].type, types.Integer)
        )
        if not extra and own_key:
            return None
        return cls(table, ours, engine.dialect.name)

    def save(self, conn: Connection, row: Row) -> None:
        """Write one record (a version of one run) in the current transaction."""
        t = self.table
        run = t.c.run_id == row["run_id"]
        if conn.execute(select(func.count()).select_from(t).where(run)).scalar_one():
            conn.execute(update(t).where(run).values(**row))
            return
        match = self._service_row(row.get("task_id"))
        if match is not None:
            claimed = conn.execute(update(t).where(match, t.c.run_id.is_(None)).values(**row))
            if claimed.rowcount:
                return
        values = {name: fill(row) for name, fill in self._fillers.items()}
        key = self._key
        if key is not None and not fills_itself(key, self._dialect):
            values[key.name] = self._new_key(conn, key, row)
        conn.execute(insert(t).values(**values, **row))

    def _service_row(self, task_id: Any) -> Any:
        """Which unclaimed service row is this task's: same task_id, or a key equal to it."""
        if not isinstance(task_id, str) or not task_id:
            return None
        t = self.table
        same = [t.c.task_id == task_id]
        key = self._key
        if key is not None and key.name != "task_id":
            if isinstance(key.type, types.Integer):
                if task_id.isdigit():
                    same.append(key == int(task_id))
            elif isinstance(key.type, types.String):
                same.append(key == task_id)
        match = or_(*same)
        # Only the first unclaimed row: the key picks one row.
        first = select(t.c[key.name] if key is not None else t.c.task_id).where(
            match, t.c.run_id.is_(None)
        )
        return (key if key is not None else t.c.task_id).in_(first.limit(1).scalar_subquery())

    @staticmethod
    def _new_key(conn: Connection, key: Column[Any], row: Row) -> Any:
        if isinstance(key.type, types.Integer):
            return int(conn.execute(select(func.coalesce(func.max(key), 0))).scalar_one()) + 1
        task_id = row.get("task_id")
        taken = select(func.count()).select_from(key.table).where(key == task_id)
        if task_id and not conn.execute(taken).scalar_one():
            return task_id
        return row["run_id"]
