"""The database schema (SQLAlchemy Core): ``generation_tasks`` and ``system_samples``.

Columns carry the record fields' own names. Tuple fields are JSON text in Text columns, so
the schema is the same on SQLite and PostgreSQL and a service table can be adopted in place
(see ``migrations/versions/0001_initial.py``). The spec's six columns keep the spec's types
and defaults. A field of ``TaskRecord`` not written out below gets a column of its type
(:func:`record_columns`), so a new record field needs only its migration here. A test checks
that the migrations build exactly this schema.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable, Iterator
from datetime import datetime
from types import NoneType, UnionType
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

from genperf.records import TEXT_LIMITS, TaskRecord
from genperf.storage.utc import as_utc_or_none

TASKS_TABLE = "generation_tasks"
SAMPLES_TABLE = "system_samples"
MONITORS_TABLE = "genperf_monitors"
# Our own Alembic version table: a service that shares the database may run Alembic too.
VERSION_TABLE = "genperf_alembic_version"


class UtcDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always binds and returns aware UTC datetimes.

    SQLite has no time zones: it would store an aware value's wall time and return a naive
    one. Binding UTC keeps stored text in time order (so ``ORDER BY`` and ranges work) and
    reading it back as UTC gives the caller the instant it stored, on every database.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return as_utc_or_none(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return as_utc_or_none(value)


metadata = MetaData()


def _float(name: str, **kw: Any) -> Column[float]:
    return Column(name, Float, **kw)


def _field_types(record: type[Any]) -> dict[str, Any]:
    """Each field's type, ``None`` taken out of an optional one."""
    out: dict[str, Any] = {}
    for name, hint in typing.get_type_hints(record).items():
        out[name] = hint
        if isinstance(hint, UnionType) or typing.get_origin(hint) is typing.Union:
            args = [a for a in typing.get_args(hint) if a is not NoneType]
            if len(args) == 1:
                out[name] = args[0]
    return out


_TASK_TYPES = _field_types(TaskRecord)

# Tuple fields of TaskRecord, stored as JSON text.
TASK_JSON_COLUMNS = frozenset(
    name for name, hint in _TASK_TYPES.items() if typing.get_origin(hint) is tuple
)


def _column_type(name: str, hint: Any) -> Any:
    if name in TASK_JSON_COLUMNS:
        return Text
    if hint is bool:
        return Boolean
    if hint is int:
        return Integer
    if hint is float:
        return Float
    if hint is datetime:
        return UtcDateTime
    if name in TEXT_LIMITS:
        return String(TEXT_LIMITS[name])
    return Text


def record_columns(written: Iterable[str]) -> Iterator[Column[Any]]:
    """A column, typed from the record, for each TaskRecord field not in ``written``."""
    skip = set(written)
    for f in dataclasses.fields(TaskRecord):
        if f.name not in skip:
            yield Column(f.name, _column_type(f.name, _TASK_TYPES[f.name]))


_TASK_COLUMNS: list[Any] = [
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("task_id", String(200), index=True),
    Column("node", String(255)),
    Column("model_type", String(100)),
    Column("resolution", String(50)),
    Column("resolution_class", String(20)),
    Column("steps", Integer),
    Column("status", String(20)),  # TaskStatus value
    Column("started_at", UtcDateTime, index=True),
    Column("completed_at", UtcDateTime),
    Column("model_used", String(100)),
    Column("frames", Integer),
    _float("generation_time_seconds", server_default="0.0"),
    _float("model_load_time_seconds"),
    Column("weights_memory_mapped", Boolean),
    Column("phases", Text),  # JSON list of PhaseRecord objects
    Column("step_times_seconds", Text),  # JSON list of numbers
    _float("peak_vram_usage_mb", server_default="0.0"),
    _float("avg_vram_usage_mb"),
    _float("vram_total_mb"),
    _float("peak_vram_reserved_mb"),
    _float("peak_ram_usage_mb"),
    _float("avg_ram_usage_mb"),
    _float("ram_total_mb"),
    _float("peak_process_rss_mb"),
    _float("peak_cpu_percent"),
    _float("avg_cpu_percent"),
    _float("peak_gpu_utilization_percent"),
    _float("avg_gpu_utilization_percent"),
    _float("peak_gpu_temperature_celsius"),
    _float("avg_gpu_temperature_celsius"),
    Column("gpu_throttle_reasons", Text),  # JSON list of strings
    Column("samples_count", Integer),
    Column("optimizations_applied", Text),  # JSON list of strings
    Column("error_category", String(50)),
    Column("error_message", Text),
    Column("failed_phase", String(100)),
    Column("current_phase", String(100)),
    Column("recovery_suggestions", Text),  # JSON list of strings
    Column("monitor_instance", String(255)),
]
generation_tasks = Table(
    TASKS_TABLE,
    metadata,
    *_TASK_COLUMNS,
    *record_columns(c.name for c in _TASK_COLUMNS),
    # A unique index, not a constraint: SQLite cannot add a constraint to an existing table,
    # and ON CONFLICT (run_id) works with either.
    Index("uq_generation_tasks_run_id", "run_id", unique=True),
    Index("ix_generation_tasks_model_type_started_at", "model_type", "started_at"),
    Index("ix_generation_tasks_node_status", "node", "status"),
    # a node's newest tasks of a status (node list), and the running tasks of a window
    Index("ix_generation_tasks_node_status_started_at", "node", "status", "started_at"),
    Index("ix_generation_tasks_status_started_at", "status", "started_at"),
)

system_samples = Table(
    SAMPLES_TABLE,
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("taken_at", UtcDateTime, nullable=False, index=True),
    Column("node", String(255), nullable=False),
    _float("cpu_percent"),
    Column("cpu_per_core_percent", Text),  # JSON list of numbers, or NULL when unknown
    Column("cpu_count", Integer),
    Column("ram_used_bytes", BigInteger),
    Column("ram_total_bytes", BigInteger),
    _float("ram_percent"),
    Column("swap_used_bytes", BigInteger),
    _float("swap_percent"),
    Column("disk_path", Text),
    Column("disk_used_bytes", BigInteger),
    Column("disk_total_bytes", BigInteger),
    Column("disk_free_bytes", BigInteger),
    _float("disk_percent"),
    _float("disk_read_bytes_per_second"),
    _float("disk_write_bytes_per_second"),
    _float("cpu_temperature_celsius"),
    Column("process_rss_bytes", BigInteger),
    Column("gpus", Text),  # JSON list of GpuReading objects
    # Not a sample field: the genperf that wrote the row (the fleet view shows each node's).
    Column("genperf_version", String(40)),
    Index("ix_system_samples_node_taken_at", "node", "taken_at"),
)

# The monitors writing to this database: a row when one starts, stopped_at when it stops.
genperf_monitors = Table(
    MONITORS_TABLE,
    metadata,
    Column("instance", String(255), primary_key=True),  # node:pid:process start time
    Column("node", String(255), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("stopped_at", UtcDateTime),
)

# --- roll-ups (see rollups.py): the tally of each bucket of finished tasks ----------------
ROLLUPS_TABLE = "genperf_task_rollups"
ROLLUP_FAILURES_TABLE = "genperf_task_rollup_failures"
ROLLUP_BANDS_TABLE = "genperf_rollup_bands"

# A bucket: its grain (hour_node, hour_fleet, day_node, day_fleet), its first hour (hours
# since the epoch, UTC), node ("*" in fleet rows; "" for a task without one), model type,
# resolution class and status ("" for NULL). Text keys are NOT NULL so they can be a key.
ROLLUP_KEY = ("grain", "period", "node", "model_type", "resolution_class", "status")


def _bucket_columns() -> list[Column[Any]]:
    return [
        Column("grain", String(10), nullable=False),
        Column("period", Integer, nullable=False),
        Column("node", String(255), nullable=False),
        Column("model_type", String(100), nullable=False),
        Column("resolution_class", String(20), nullable=False),
        Column("status", String(20), nullable=False),
    ]


def _tally_columns() -> list[Column[Any]]:
    """A column per field of :class:`~genperf.tally.Tally`, typed as the field."""
    from genperf.tally import Tally

    types = _field_types(Tally)
    return [
        Column(
            f.name, Integer if types[f.name] is int else Float, nullable=types[f.name] is not int
        )
        for f in dataclasses.fields(Tally)
    ]


task_rollups = Table(
    ROLLUPS_TABLE,
    metadata,
    *_bucket_columns(),
    *_tally_columns(),
    PrimaryKeyConstraint(*ROLLUP_KEY, name="pk_genperf_task_rollups"),
)

task_rollup_failures = Table(
    ROLLUP_FAILURES_TABLE,
    metadata,
    *_bucket_columns(),
    Column("error_category", String(50), nullable=False),
    Column("failed_phase", String(100), nullable=False),
    Column("optimizations_applied", Text, nullable=False),
    Column("runs", Integer, nullable=False),
    Index(
        "ix_genperf_task_rollup_failures_bucket",
        "grain",
        "period",
        "node",
        "model_type",
        "resolution_class",
    ),
)

# The bands and targets the roll-ups' banded counts were made with (one row, id 1): a reader
# whose settings differ reads the raw tasks instead (see rollups.py).
rollup_bands = Table(
    ROLLUP_BANDS_TABLE,
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("fingerprint", String(64), nullable=False),
    Column("bands", Text, nullable=False),  # JSON: performance_thresholds, benchmark_targets
    Column("built_at", UtcDateTime, nullable=False),
)
