"""A queue table made before leases (genperf before 0004_leases) gets its lease columns when
the queue opens it, and keeps its requests."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from genperf.generation.queue import RequestQueue
from genperf.generation.request import RequestStatus
from genperf.storage.engine import make_engine
from genperf.storage.migrate import alembic_config, current_revision, head_revision

OLD_TABLE = """CREATE TABLE generation_requests (
    id INTEGER PRIMARY KEY, task_id VARCHAR(64) NOT NULL, model_type VARCHAR(100) NOT NULL,
    prompt TEXT, width INTEGER NOT NULL, height INTEGER NOT NULL, steps INTEGER NOT NULL,
    frames INTEGER NOT NULL, memory_headroom_mib INTEGER, status VARCHAR(20) NOT NULL,
    created_at TIMESTAMP NOT NULL, started_at TIMESTAMP, completed_at TIMESTAMP,
    run_id VARCHAR(64), error_message TEXT)"""


def test_an_old_queue_table_gets_its_leases(queue_url):
    engine = make_engine(queue_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(connection=conn), "0003_fleet")
            conn.execute(text(OLD_TABLE))
            conn.execute(
                text(
                    "INSERT INTO generation_requests (id, task_id, model_type, prompt, width, "
                    "height, steps, frames, status, created_at) VALUES (1, 'old', 'tiny-wan-t2v', "
                    "'p', 64, 64, 2, 5, 'queued', CURRENT_TIMESTAMP)"
                )
            )
    finally:
        engine.dispose()

    queue = RequestQueue(queue_url)
    try:
        claimed = queue.claim_next("w", "node-a", lease_seconds=30)
        assert claimed is not None and claimed.task_id == "old"
        held = queue.get("old")
        assert (held.status, held.node, held.attempts) == (RequestStatus.RUNNING, "node-a", 1)
        assert held.lease_expires_at is not None
    finally:
        queue.close()
    check = make_engine(queue_url)
    try:
        names = {c["name"] for c in inspect(check).get_columns("generation_requests")}
        assert {"lease_expires_at", "worker", "node", "attempts", "requeue_on_failure"} <= names
        with check.connect() as conn:
            assert current_revision(conn) == head_revision()
    finally:
        check.dispose()
