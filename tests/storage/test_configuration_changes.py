"""Recorded configuration changes on SQLite and PostgreSQL: none before the first writer
creates the table (a reader never creates it), then newest first, by time and count."""

from __future__ import annotations

from datetime import timedelta

from genperf.records import utc_now
from genperf.storage import SqlStore
from genperf.storage.changes import record_change
from genperf.storage.engine import make_engine


def test_changes_are_read_newest_first_and_a_reader_creates_no_table(db_url: str) -> None:
    store = SqlStore(db_url)
    engine = make_engine(db_url)
    try:
        assert store.configuration_changes() == []
        assert store.configuration_changes() == []  # and still no table to find
        now = utc_now()
        for hours, key, new in (
            (48, "tuned_presets.tiny-wan-t2v", "tiled"),
            (2, "monitoring_interval_seconds", "1"),
            (1, "tuned_presets.t2v-A14B", "offload"),
        ):
            row = {"changed_at": now - timedelta(hours=hours), "key": key, "new_value": new}
            record_change(engine, {**row, "old_value": None, "source": "genperf tune"})
        changes = store.configuration_changes()
        assert [(c.key, c.model_type) for c in changes] == [
            ("tuned_presets.t2v-A14B", "t2v-A14B"),
            ("monitoring_interval_seconds", None),
            ("tuned_presets.tiny-wan-t2v", "tiny-wan-t2v"),
        ]
        assert changes[0].changed_at == now - timedelta(hours=1)  # UTC, aware, exact
        recent = store.configuration_changes(since=now - timedelta(hours=3))
        assert [c.new_value for c in recent] == ["offload", "1"]
        assert [c.new_value for c in store.configuration_changes(limit=1)] == ["offload"]
    finally:
        engine.dispose()
        store.close()


def test_the_narrow_read_has_the_fields_a_comparison_needs(db_url: str) -> None:
    from genperf.records import TaskStatus
    from genperf.storage.base import TaskQuery
    from genperf.testing import make_task

    store = SqlStore(db_url)
    try:
        now = utc_now()
        for i, status in enumerate((TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.RUNNING)):
            store.save_task(
                make_task(
                    status=status,
                    started_at=now - timedelta(minutes=i),
                    peak_process_rss_mb=900.0 + i,
                    completed_at=None if status is TaskStatus.RUNNING else now,
                )
            )
        query = TaskQuery(since=now - timedelta(hours=1), newest_first=True, limit=2)
        narrow, whole = store.task_outcomes(query), store.query_tasks(query)
        fields = ("run_id", "model_type", "resolution_class", "status", "started_at")
        more = ("generation_time_seconds", "peak_vram_usage_mb", "peak_process_rss_mb")
        for n, w in zip(narrow, whole, strict=True):
            assert [getattr(n, f) for f in fields + more] == [getattr(w, f) for f in fields + more]
        assert [n.status for n in narrow] == [TaskStatus.COMPLETED, TaskStatus.FAILED]
    finally:
        store.close()
