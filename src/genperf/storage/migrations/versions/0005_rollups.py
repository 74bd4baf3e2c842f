"""Roll-ups: the tally of finished tasks per hour and day x node x model x resolution class.

``genperf_task_rollups`` holds, per bucket and status, the columns of ``genperf.tally.Tally``
(counts, sums for means, min and max, banded counts); ``genperf_task_rollup_failures`` the
failed and interrupted runs per bucket by category, phase and optimisations;
``genperf_rollup_bands`` the bands and targets the banded counts were made with. The store
keeps them current as tasks are written; ``genperf rollups rebuild`` makes them from the raw
tasks (an existing database gets its roll-ups that way: this migration leaves them empty, and
readers use the raw tasks until a band set is recorded). Two indexes on ``generation_tasks``
find a node's newest tasks of a status (node, status, started_at) and a window's running
tasks (status, started_at).

The tally's columns are written out here (not read from ``genperf.tally``), so this migration
builds the same tables whatever the tally becomes; a new tally field needs a new migration.

Revision ID: 0005_rollups
Revises: 0004_leases (it depends on nothing there)
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005_rollups"
down_revision: str | None = "0004_leases"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

TASKS = "generation_tasks"
ROLLUPS = "genperf_task_rollups"
FAILURES = "genperf_task_rollup_failures"
BANDS = "genperf_rollup_bands"
TASK_INDEXES = {
    "ix_generation_tasks_node_status_started_at": ["node", "status", "started_at"],
    "ix_generation_tasks_status_started_at": ["status", "started_at"],
}
KEY = ("grain", "period", "node", "model_type", "resolution_class", "status")

# (name, type, nullable) of each Tally field, in the dataclass's order
TALLY_COLUMNS = (
    ("tasks", sa.Integer(), False),
    ("completed", sa.Integer(), False),
    ("failed", sa.Integer(), False),
    ("interrupted", sa.Integer(), False),
    ("gpu_tasks", sa.Integer(), False),
    ("gen_n", sa.Integer(), False),
    ("gen_sum", sa.Float(), True),
    ("gen_min", sa.Float(), True),
    ("gen_max", sa.Float(), True),
    ("target_n", sa.Integer(), False),
    ("over_target", sa.Integer(), False),
    ("over_acceptable", sa.Integer(), False),
    ("time_score_sum", sa.Float(), True),
    ("load_n", sa.Integer(), False),
    ("load_sum", sa.Float(), True),
    ("load_max", sa.Float(), True),
    ("load_slow", sa.Integer(), False),
    ("load_dominant", sa.Integer(), False),
    ("vram_n", sa.Integer(), False),
    ("vram_sum", sa.Float(), True),
    ("vram_max", sa.Float(), True),
    ("vram_ge_acceptable", sa.Integer(), False),
    ("vram_ge_maximum", sa.Integer(), False),
    ("ram_n", sa.Integer(), False),
    ("ram_sum", sa.Float(), True),
    ("ram_max", sa.Float(), True),
    ("ram_ge_acceptable", sa.Integer(), False),
    ("ram_ge_maximum", sa.Integer(), False),
    ("cpu_n", sa.Integer(), False),
    ("cpu_sum", sa.Float(), True),
    ("cpu_max", sa.Float(), True),
    ("cpu_ge_acceptable", sa.Integer(), False),
    ("cpu_ge_maximum", sa.Integer(), False),
    ("cpu_busy_gpu_idle", sa.Integer(), False),
    ("util_n", sa.Integer(), False),
    ("util_sum", sa.Float(), True),
    ("memory_n", sa.Integer(), False),
    ("memory_over", sa.Integer(), False),
    ("temp_n", sa.Integer(), False),
    ("temp_max", sa.Float(), True),
    ("temp_hot", sa.Integer(), False),
    ("temp_critical", sa.Integer(), False),
    ("throttle_thermal", sa.Integer(), False),
    ("throttle_power", sa.Integer(), False),
    ("offload_n", sa.Integer(), False),
    ("offload_sequential", sa.Integer(), False),
    ("offload_util_n", sa.Integer(), False),
    ("offload_util_sum", sa.Float(), True),
    ("offload_util_low", sa.Integer(), False),
)


def _key() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("grain", sa.String(10), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(255), nullable=False),
        sa.Column("model_type", sa.String(100), nullable=False),
        sa.Column("resolution_class", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
    ]


def upgrade() -> None:
    for name, columns in TASK_INDEXES.items():
        op.create_index(name, TASKS, columns)
    op.create_table(
        ROLLUPS,
        *_key(),
        *(sa.Column(name, kind, nullable=nullable) for name, kind, nullable in TALLY_COLUMNS),
        sa.PrimaryKeyConstraint(*KEY, name="pk_genperf_task_rollups"),
    )
    op.create_table(
        FAILURES,
        *_key(),
        sa.Column("error_category", sa.String(50), nullable=False),
        sa.Column("failed_phase", sa.String(100), nullable=False),
        sa.Column("optimizations_applied", sa.Text(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
    )
    op.create_index(
        "ix_genperf_task_rollup_failures_bucket",
        FAILURES,
        ["grain", "period", "node", "model_type", "resolution_class"],
    )
    op.create_table(
        BANDS,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("bands", sa.Text(), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table(BANDS)
    op.drop_index("ix_genperf_task_rollup_failures_bucket", table_name=FAILURES)
    op.drop_table(FAILURES)
    op.drop_table(ROLLUPS)
    for name in TASK_INDEXES:
        op.drop_index(name, table_name=TASKS)
