"""The tally of :class:`~genperf.tally.Tally` as one SQL statement, on SQLite and PostgreSQL.

Shared by the window aggregation (``aggregates``) and the roll-ups (``rollups``), which run
the very same statement over one bucket's tasks: a roll-up row is the tally of its bucket, so
adding roll-up rows gives what this statement gives over their tasks together. The bands and
thresholds are ``genperf.tally``'s, shared with the Python tally.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
)

from genperf import optimizations as opt
from genperf.config import Settings
from genperf.records import TaskStatus
from genperf.storage.schema import generation_tasks as tasks
from genperf.tally import (
    BANDS,
    LOAD_MIN_SECONDS,
    LOAD_SHARE,
    LOW_GPU_UTILIZATION_PERCENT,
    POWER_THROTTLE_MARKERS,
    RESOURCES,
    THERMAL_THROTTLE_MARKERS,
    Tally,
)

_C = tasks.c
TALLY_FIELDS = tuple(f.name for f in dataclasses.fields(Tally))


class _Sql:
    """The dialect's spelling of a few things SQLite and PostgreSQL write differently."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"

    def flag(self, cond: ColumnElement[bool]) -> ColumnElement[Any]:
        """1 / 0 / NULL for a condition."""
        return cond if self.sqlite else cast(cond, Integer)

    def count(self, flag: ColumnElement[Any]) -> ColumnElement[Any]:
        """How many rows have the flag set."""
        return func.total(flag) if self.sqlite else func.coalesce(func.sum(flag), 0)

    def total(self, value: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.total(value) if self.sqlite else func.coalesce(func.sum(value), 0.0)

    def contains(self, column: ColumnElement[Any], text: str) -> ColumnElement[bool]:
        if self.sqlite:
            return func.instr(column, text) > 0
        return column.contains(text, autoescape=True)

    def contains_any(self, column: ColumnElement[Any], texts: Sequence[str]) -> ColumnElement[bool]:
        return or_(*(self.contains(column, t) for t in texts))


def _target(settings: Settings) -> ColumnElement[Any]:
    targets = settings.performance_thresholds.generation_time_targets()
    if not targets:
        return cast(null(), Float)  # typed: PostgreSQL must know what a NULL divides
    return case(*((_C.resolution_class == cls, literal(t)) for cls, t in targets.items()))


def _per_row(sql: _Sql, settings: Settings) -> list[ColumnElement[Any]]:
    """Per-row values the tally aggregates, each computed once per row. The names of those
    the bands compare are :data:`genperf.tally.Value`'s."""
    off = _C.optimizations_applied
    return [
        sql.flag(_C.status == TaskStatus.COMPLETED.value).label("completed"),
        sql.flag(_C.status == TaskStatus.FAILED.value).label("failed"),
        sql.flag(_C.status == TaskStatus.INTERRUPTED.value).label("interrupted"),
        sql.flag(_C.vram_total_mb != 0).label("has_gpu"),
        case((_C.status == TaskStatus.COMPLETED.value, _C.generation_time_seconds)).label(
            "completed_seconds"
        ),
        _C.generation_time_seconds.label("generation_seconds"),
        _target(settings).label("target_seconds"),
        _C.model_load_time_seconds.label("load_seconds"),
        (_C.peak_vram_usage_mb * 100.0 / func.nullif(_C.vram_total_mb, 0)).label("vram_percent"),
        (_C.peak_ram_usage_mb * 100.0 / func.nullif(_C.ram_total_mb, 0)).label("ram_percent"),
        _C.avg_cpu_percent.label("cpu_percent"),
        _C.avg_gpu_utilization_percent.label("gpu_utilization_percent"),
        _C.peak_gpu_temperature_celsius.label("temperature_celsius"),
        sql.flag(sql.contains_any(_C.gpu_throttle_reasons, THERMAL_THROTTLE_MARKERS)).label(
            "thermal_throttled"
        ),
        sql.flag(sql.contains_any(_C.gpu_throttle_reasons, POWER_THROTTLE_MARKERS)).label(
            "power_throttled"
        ),
        sql.flag(sql.contains(off, f'"{opt.OFFLOAD}')).label("offloaded"),
        sql.flag(sql.contains(off, f'"{opt.OFFLOAD_SEQUENTIAL}"')).label("offloaded_sequentially"),
    ]


def tally_statement(
    dialect: str,
    settings: Settings,
    where: Sequence[ColumnElement[bool]],
    *,
    keys: Sequence[ColumnElement[Any]] = (),
) -> Select[Any]:
    """One statement with a column per field of :class:`~genperf.tally.Tally`, over the rows
    matching ``where``: a single row, or with ``keys`` (labelled per-row expressions) one row
    per distinct key, the keys' columns first."""
    sql = _Sql(dialect)
    per_row = select(*_per_row(sql, settings), *keys).where(*where)
    if sql.sqlite:
        per_row = per_row.limit(-1)  # keeps SQLite from flattening: per-row values once
    row = per_row.subquery("per_row").c
    bt = settings.benchmark_targets
    low = LOW_GPU_UTILIZATION_PERCENT
    flag, count, total = sql.flag, sql.count, sql.total
    done = row.completed_seconds  # generation time of completed tasks, else NULL
    target = row.target_seconds
    offload_util = case((row.offloaded == 1, row.gpu_utilization_percent))
    cols: dict[str, ColumnElement[Any]] = {
        "tasks": func.count(),
        "completed": count(row.completed),
        "failed": count(row.failed),
        "interrupted": count(row.interrupted),
        "gpu_tasks": count(row.has_gpu),
        "gen_n": func.count(done),
        "gen_sum": total(done),
        "gen_min": func.min(done),
        "gen_max": func.max(done),
        "target_n": count(flag(and_(done.is_not(None), target.is_not(None)))),
        "over_target": count(flag(done > target)),
        "over_acceptable": count(flag(done > target * bt.generation_time_acceptable_factor)),
        "time_score_sum": total(case((done <= target, 1.0), (done > target, target / done))),
        "load_n": func.count(row.load_seconds),
        "load_sum": total(row.load_seconds),
        "load_max": func.max(row.load_seconds),
        "load_dominant": count(
            flag(
                and_(
                    row.generation_seconds != 0,
                    row.load_seconds >= LOAD_MIN_SECONDS,
                    row.load_seconds >= LOAD_SHARE * row.generation_seconds,
                )
            )
        ),
        "util_n": func.count(row.gpu_utilization_percent),
        "util_sum": total(row.gpu_utilization_percent),
        "cpu_busy_gpu_idle": count(
            flag(
                and_(
                    row.cpu_percent >= bt.cpu_usage_percent.acceptable,
                    row.gpu_utilization_percent < low,
                )
            )
        ),
        "memory_n": count(flag(or_(row.vram_percent.is_not(None), row.ram_percent.is_not(None)))),
        "memory_over": count(
            flag(
                or_(
                    row.vram_percent >= bt.vram_usage_percent.maximum,
                    row.ram_percent >= bt.ram_usage_percent.maximum,
                )
            )
        ),
        "temp_n": func.count(row.temperature_celsius),
        "temp_max": func.max(row.temperature_celsius),
        "throttle_thermal": count(row.thermal_throttled),
        "throttle_power": count(row.power_throttled),
        "offload_n": count(row.offloaded),
        "offload_sequential": count(row.offloaded_sequentially),
        "offload_util_n": func.count(offload_util),
        "offload_util_sum": total(offload_util),
        "offload_util_low": count(flag(offload_util < low)),
    }
    for prefix, name in RESOURCES:
        cols[f"{prefix}_n"] = func.count(row[name])
        cols[f"{prefix}_sum"] = total(row[name])
        cols[f"{prefix}_max"] = func.max(row[name])
    for rule in BANDS:  # the same bands as the Python tally
        cols[rule.field] = count(flag(row[rule.value] >= rule.bound(settings)))
    grouped = [row[k.key] for k in keys if k.key is not None]
    stmt = select(*grouped, *(cols[name].label(name) for name in TALLY_FIELDS))
    return stmt.group_by(*grouped) if grouped else stmt


def as_tally(row: Any) -> Tally:
    values: dict[str, Any] = {}
    for name, value in row.items():
        if name.endswith("_sum"):
            values[name] = float(value or 0.0)
        elif name.endswith(("_max", "_min")):
            values[name] = None if value is None else float(value)
        else:
            values[name] = int(value or 0)
    return Tally(**values)
