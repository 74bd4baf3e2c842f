"""genperf_monitors: which monitors write to this database, and which have stopped.

A monitor adds its row when it starts and sets ``stopped_at`` when it stops, so ``genperf
status`` says "stopped" as soon as the server has, instead of waiting for its newest sample
to grow old.

Revision ID: 0002_monitors
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002_monitors"
down_revision: str | None = "0001"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

MONITORS = "genperf_monitors"


def upgrade() -> None:
    op.create_table(
        MONITORS,
        sa.Column("instance", sa.String(255), primary_key=True),
        sa.Column("node", sa.String(255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table(MONITORS)
