"""Queue across nodes: the GPU a task ran on, and leases on running generation requests.

``generation_tasks.gpu_index`` is the GPU of its node a task ran on, where known.

``generation_requests`` belongs to the generation queue (genperf.generation.queue), which makes
it at its first use; a database whose queue table predates leases gets them here: which worker
(``worker``, on ``node``) runs a request, until when its lease holds (``lease_expires_at``,
renewed by the worker), how many times it was claimed (``attempts``), whether it may run once
more after its worker died (``requeue_on_failure``), and the phase it was in when it was
interrupted (``interrupted_phase``). A queue table made after this revision already has them.

Revision ID: 0004_leases
Revises: 0003_fleet
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004_leases"
down_revision: str | None = "0003_fleet"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

TASKS = "generation_tasks"
REQUESTS = "generation_requests"
LEASE_INDEX = "ix_generation_requests_status_lease"


def _lease_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("node", sa.String(255)),
        sa.Column("worker", sa.String(255)),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("requeue_on_failure", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("interrupted_phase", sa.String(100)),
    ]


def upgrade() -> None:
    with op.batch_alter_table(TASKS) as batch:
        batch.add_column(sa.Column("gpu_index", sa.Integer))
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table(REQUESTS):
        return
    have = {c["name"] for c in inspector.get_columns(REQUESTS)}
    missing = [c for c in _lease_columns() if c.name not in have]
    if missing:
        with op.batch_alter_table(REQUESTS) as batch:
            for column in missing:
                batch.add_column(column)
    if LEASE_INDEX not in {i["name"] for i in inspector.get_indexes(REQUESTS)}:
        op.create_index(LEASE_INDEX, REQUESTS, ["status", "lease_expires_at"])


def downgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if inspector.has_table(REQUESTS):
        if LEASE_INDEX in {i["name"] for i in inspector.get_indexes(REQUESTS)}:
            op.drop_index(LEASE_INDEX, table_name=REQUESTS)
        have = {c["name"] for c in inspector.get_columns(REQUESTS)}
        with op.batch_alter_table(REQUESTS) as batch:
            for column in _lease_columns():
                if column.name in have:
                    batch.drop_column(column.name)
    with op.batch_alter_table(TASKS) as batch:
        batch.drop_column("gpu_index")
