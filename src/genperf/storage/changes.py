"""Recorded configuration changes (the spec's "keep records of configuration changes").

``genperf tune`` writes one row per change it makes (``tuned_presets.<model type>``, old and
new value, the measured medians of both); the query layer reads them to set the window
before each change against the window after. The table is created by its first writer, as
the generation service's own tables are; a reader never creates it (no table: no change).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    inspect,
    select,
)

from genperf.storage.schema import UtcDateTime

CHANGES_TABLE = "configuration_changes"
TUNED_PRESET_KEY = "tuned_presets."  # a key "tuned_presets.<model type>" changes that model

metadata = MetaData()
configuration_changes = Table(
    CHANGES_TABLE,
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("changed_at", UtcDateTime, nullable=False),
    Column("key", String(200), nullable=False),  # "tuned_presets.<model_type>"
    Column("old_value", String(200)),
    Column("new_value", String(200), nullable=False),
    Column("source", String(50), nullable=False),  # "genperf tune"
    Column("before_time_seconds", Float),
    Column("after_time_seconds", Float),
    Column("before_peak_mb", Float),
    Column("after_peak_mb", Float),
)


@dataclass(frozen=True, slots=True)
class ConfigurationChange:
    """One recorded change, with the figures its writer measured (None: not measured)."""

    id: int
    changed_at: datetime
    key: str
    old_value: str | None
    new_value: str
    source: str
    before_time_seconds: float | None
    after_time_seconds: float | None
    before_peak_mb: float | None
    after_peak_mb: float | None

    @property
    def model_type(self) -> str | None:
        """The model type the change is about, or None when it concerns every model."""
        if self.key.startswith(TUNED_PRESET_KEY):
            return self.key[len(TUNED_PRESET_KEY) :] or None
        return None


def record_change(engine: Engine, change: Mapping[str, Any]) -> None:
    """Insert one change (the columns but ``id``), creating the table on first use."""
    metadata.create_all(engine, checkfirst=True)
    with engine.begin() as conn:
        conn.execute(insert(configuration_changes), dict(change))


def read_changes(
    conn: Connection, *, since: datetime | None = None, limit: int = 100
) -> list[ConfigurationChange]:
    """The newest ``limit`` changes made at or after ``since``, newest first; none when the
    table was never created."""
    if not inspect(conn).has_table(CHANGES_TABLE):
        return []
    t = configuration_changes
    stmt = select(t).order_by(t.c.changed_at.desc(), t.c.id.desc()).limit(limit)
    if since is not None:
        stmt = stmt.where(t.c.changed_at >= since)
    return [ConfigurationChange(**dict(row)) for row in conn.execute(stmt).mappings()]
