"""How long the configuration-change comparison (``GET /config-changes``, ``genperf changes``,
the dashboard's card) takes over a busy store, with the narrow read against whole records.

Method
------
1. A fresh SQLite file (the real schema, by ``SqlStore``) is filled with ``--tasks`` synthetic
   tasks over the 24 h before now (``report_scale.rows``: the same realistic history, 70 %
   t2v-A14B), inserted by DB-API executemany, never through the Python API; ``--changes``
   changes of ``tuned_presets.t2v-A14B`` are recorded a minute apart 12 h ago.
2. ``Queries.config_changes(720, compare_hours=24, limit=--changes)`` runs once to warm the
   page cache, then ``--repeats`` times; the median wall and process CPU time are printed
   (``fleet_nodes.timed``, whose extra run under ``tracemalloc`` is not reported here).
3. The same with the narrow read turned off (each change's window decoded as whole records
   through ``iter_tasks``), the way the comparison first read.

Run::

    .venv/bin/python benchmarks/config_changes.py --tasks 20000 --changes 5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

sys.path.insert(0, str(Path(__file__).parent))
import report_scale
from fleet_nodes import timed
from genperf.config import Settings
from genperf.queries import Queries
from genperf.storage import SqlStore
from genperf.storage.changes import record_change
from report_scale import NOW


def fill(path: Path, tasks: int, changes: int) -> None:
    report_scale.fill(path, tasks)  # the real schema, the same history, by executemany
    engine = create_engine(f"sqlite:///{path}")
    for k in range(changes):
        change = {"key": "tuned_presets.t2v-A14B", "old_value": None, "new_value": f"p{k}"}
        at = NOW - timedelta(hours=12, minutes=k)
        record_change(engine, {**change, "changed_at": at, "source": "benchmark"})
    engine.dispose()


class WholeRecords:
    """The store without its narrow read: each window decoded as whole records."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        if name == "task_outcomes":
            raise AttributeError(name)
        return getattr(self._store, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--changes", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "genperf.db"
        fill(path, args.tasks, args.changes)
        store = SqlStore(f"sqlite:///{path}")
        try:
            settings = Settings(data_dir=Path(tmp))
            for name, read in (("narrow read", store), ("whole records", WholeRecords(store))):
                queries = Queries(settings, lambda read=read: read, now=lambda: NOW)
                answer = queries.config_changes(720, compare_hours=24, limit=args.changes)
                seen = sum(g.before.tasks + g.after.tasks for g in answer.changes[0].groups)
                wall, cpu, _peak = timed(
                    lambda q=queries: q.config_changes(720, compare_hours=24, limit=args.changes),
                    args.repeats,
                )
                print(
                    f"{name:>13}: {args.changes} changes x {seen} tasks each: "
                    f"{wall:.3f} s wall, {cpu:.3f} s CPU (median of {args.repeats})"
                )
        finally:
            store.close()


if __name__ == "__main__":
    main()
