"""The fleet view: which genperf wrote each sample, and each node's newest samples by index.

``system_samples.genperf_version`` is filled by the store that writes the row (the version
each node runs); ``ix_system_samples_node_taken_at`` answers "the newest samples of node N"
without scanning other nodes' samples.

Revision ID: 0003_fleet
Revises: 0002_monitors
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_fleet"
down_revision: str | None = "0002_monitors"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

SAMPLES = "system_samples"
INDEX = "ix_system_samples_node_taken_at"


def upgrade() -> None:
    with op.batch_alter_table(SAMPLES) as batch:
        batch.add_column(sa.Column("genperf_version", sa.String(40)))
    op.create_index(INDEX, SAMPLES, ["node", "taken_at"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name=SAMPLES)
    with op.batch_alter_table(SAMPLES) as batch:
        batch.drop_column("genperf_version")
