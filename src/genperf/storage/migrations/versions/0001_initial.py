"""genperf's first schema: generation_tasks and system_samples.

A generation service may already keep its own ``generation_tasks`` table (the spec adds its
metric columns to the service's table). Then this revision adopts it in place: it keeps every
row and column there, adds the genperf columns the table lacks (nullable; the spec's defaults
for the spec's columns) and genperf's indexes. genperf's rows are those with a run_id; the
service's own rows have none and genperf never reads them, until it records a task a row
stands for and fills it (``storage/adopt.py``, which also says how genperf's own rows get keys
and values for the service's NOT NULL columns).

The columns are written out here, not imported from schema.py: a revision must keep building
the schema of its time after schema.py moves on.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Inspector
from sqlalchemy.engine.interfaces import ReflectedColumn

from genperf.errors import StoreError

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

TASKS = "generation_tasks"
SAMPLES = "system_samples"

TASK_INDEXES: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("uq_generation_tasks_run_id", ("run_id",), True),
    ("ix_generation_tasks_task_id", ("task_id",), False),
    ("ix_generation_tasks_started_at", ("started_at",), False),
    ("ix_generation_tasks_model_type_started_at", ("model_type", "started_at"), False),
    ("ix_generation_tasks_node_status", ("node", "status"), False),
)

_FLOATS = (
    "model_load_time_seconds",
    "avg_vram_usage_mb",
    "vram_total_mb",
    "peak_vram_reserved_mb",
    "peak_ram_usage_mb",
    "avg_ram_usage_mb",
    "ram_total_mb",
    "peak_process_rss_mb",
    "peak_cpu_percent",
    "avg_cpu_percent",
    "peak_gpu_utilization_percent",
    "avg_gpu_utilization_percent",
    "peak_gpu_temperature_celsius",
    "avg_gpu_temperature_celsius",
)


def _task_columns() -> list[sa.Column[object]]:
    """Every generation_tasks column genperf writes (all but the primary key)."""
    return [
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("task_id", sa.String(200)),
        sa.Column("node", sa.String(255)),
        sa.Column("model_type", sa.String(100)),
        sa.Column("resolution", sa.String(50)),
        sa.Column("resolution_class", sa.String(20)),
        sa.Column("steps", sa.Integer),
        sa.Column("status", sa.String(20)),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        # The spec's six columns, with the spec's types and defaults.
        sa.Column("model_used", sa.String(100)),
        sa.Column("generation_time_seconds", sa.Float, server_default="0.0"),
        sa.Column("peak_vram_usage_mb", sa.Float, server_default="0.0"),
        sa.Column("optimizations_applied", sa.Text),
        sa.Column("error_category", sa.String(50)),
        sa.Column("recovery_suggestions", sa.Text),
        # genperf's own.
        sa.Column("frames", sa.Integer),
        sa.Column("weights_memory_mapped", sa.Boolean),
        sa.Column("phases", sa.Text),
        sa.Column("step_times_seconds", sa.Text),
        *(sa.Column(name, sa.Float) for name in _FLOATS),
        sa.Column("gpu_throttle_reasons", sa.Text),
        sa.Column("samples_count", sa.Integer),
        sa.Column("error_message", sa.Text),
        sa.Column("failed_phase", sa.String(100)),
        sa.Column("current_phase", sa.String(100)),
        sa.Column("monitor_instance", sa.String(255)),
    ]


def _sample_columns() -> list[sa.Column[object]]:
    def float_(name: str) -> sa.Column[object]:
        return sa.Column(name, sa.Float)

    def bytes_(name: str) -> sa.Column[object]:
        return sa.Column(name, sa.BigInteger)

    return [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("node", sa.String(255), nullable=False),
        float_("cpu_percent"),
        sa.Column("cpu_per_core_percent", sa.Text),
        sa.Column("cpu_count", sa.Integer),
        bytes_("ram_used_bytes"),
        bytes_("ram_total_bytes"),
        float_("ram_percent"),
        bytes_("swap_used_bytes"),
        float_("swap_percent"),
        sa.Column("disk_path", sa.Text),
        bytes_("disk_used_bytes"),
        bytes_("disk_total_bytes"),
        bytes_("disk_free_bytes"),
        float_("disk_percent"),
        float_("disk_read_bytes_per_second"),
        float_("disk_write_bytes_per_second"),
        float_("cpu_temperature_celsius"),
        bytes_("process_rss_bytes"),
        sa.Column("gpus", sa.Text),
    ]


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    existing_indexes: set[str] = set()
    if inspector.has_table(TASKS):
        _adopt_tasks_table(inspector)
        existing_indexes = {str(ix["name"]) for ix in inspector.get_indexes(TASKS)}
    else:
        op.create_table(
            TASKS,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            *_task_columns(),
        )
    for name, columns, unique in TASK_INDEXES:
        if name not in existing_indexes:
            op.create_index(name, TASKS, list(columns), unique=unique)

    op.create_table(SAMPLES, *_sample_columns())
    op.create_index("ix_system_samples_taken_at", SAMPLES, ["taken_at"])


def _adopt_tasks_table(inspector: Inspector) -> None:
    """Add genperf's missing columns to a service's generation_tasks, keeping all it has."""
    ours = _task_columns()
    present = {c["name"]: c for c in inspector.get_columns(TASKS)}
    primary_key = inspector.get_pk_constraint(TASKS)["constrained_columns"]
    written = {c.name for c in ours}
    blocking = sorted(
        name
        for name, column in present.items()
        if name not in written
        and not _fills_itself(column, primary_key, inspector.dialect.name)
        and not _genperf_fills(column, primary_key)
    )
    if blocking:
        raise StoreError(
            f"cannot share the existing table {TASKS}: its column(s) {', '.join(blocking)} "
            "are NOT NULL without a default, of a type genperf has no neutral value for, so "
            "genperf could not insert its rows there; give genperf a database of its own "
            "(database_url)"
        )
    for column in ours:
        if column.name not in present:
            column.nullable = True  # the service's rows have no value for it
            op.add_column(TASKS, column)


def _genperf_fills(column: ReflectedColumn, primary_key: list[str]) -> bool:
    """Whether genperf gives this column a value in the rows it inserts (see storage/adopt.py):
    a single integer or text key, or a column with a neutral value of its type."""
    from genperf.storage.adopt import filler_for

    kind = column["type"]
    if primary_key == [column["name"]]:
        return isinstance(kind, sa.Integer | sa.String)
    return filler_for(kind) is not None


def _fills_itself(column: ReflectedColumn, primary_key: list[str], dialect: str) -> bool:
    """Whether an insert that leaves this column out still succeeds."""
    if column["nullable"] or column.get("default") is not None:
        return True
    if column.get("identity") or column.get("computed") or column.get("autoincrement") is True:
        return True
    # SQLite: an "INTEGER PRIMARY KEY" is the rowid and numbers itself.
    return (
        dialect == "sqlite"
        and primary_key == [column["name"]]
        and str(column["type"]).upper() == "INTEGER"
    )


def downgrade() -> None:
    op.drop_table(SAMPLES)
    inspector = sa.inspect(op.get_bind())
    genperf_only = {"id", *(c.name for c in _task_columns())}
    if {c["name"] for c in inspector.get_columns(TASKS)} <= genperf_only:
        op.drop_table(TASKS)
        return
    # An adopted service table: keep its rows and every column; drop only genperf's indexes.
    for name, _, _ in TASK_INDEXES:
        op.drop_index(name, table_name=TASKS)
