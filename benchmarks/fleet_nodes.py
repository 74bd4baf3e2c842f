"""How long the fleet's node list (``GET /nodes``, ``genperf nodes``) takes over a large store.

Method
------
1. A fresh SQLite file (the real schema, by ``SqlStore``) is filled with ``--tasks`` synthetic
   finished tasks from ``report_scale.rows`` (the same realistic history), spread over
   ``--nodes`` nodes (task i on node i mod nodes), inserted by DB-API executemany in batches
   of 50k rows, never through the Python API; then ``--samples`` samples per node, one a second
   up to now, the same way.
2. ``Queries.nodes(24)`` runs once to warm the page cache, then ``--repeats`` times; the median
   wall and process CPU time are printed, with the peak of Python allocations of one more run
   under ``tracemalloc``.
3. The same for the report filtered to one node (``Queries.analysis(24, Filters(nodes=[one]))``).

Run::

    .venv/bin/python benchmarks/fleet_nodes.py --tasks 100000 --nodes 64
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
from genperf.config import Settings
from genperf.queries import Filters, Queries
from genperf.records import GpuReading, SystemSample
from genperf.storage import SqlStore
from genperf.storage.codec import sample_to_row
from genperf.storage.schema import generation_tasks, system_samples
from report_scale import CHUNK, NOW, rows, timed


def fill(path: Path, tasks: int, nodes: int, samples: int) -> None:
    url = f"sqlite:///{path}"
    SqlStore(url).close()
    engine = create_engine(url)
    with engine.connect() as conn:
        batch: list[dict[str, Any]] = []
        for i, row in enumerate(rows(tasks)):
            row["node"] = f"gpu-{i % nodes:02d}"
            batch.append(row)
            if len(batch) == CHUNK:
                conn.execute(generation_tasks.insert(), batch)
                conn.commit()
                batch.clear()
        if batch:
            conn.execute(generation_tasks.insert(), batch)
        gpu = GpuReading(index=0, name="NVIDIA H200", utilization_percent=90.0)
        conn.execute(
            system_samples.insert(),
            [
                {
                    **sample_to_row(
                        SystemSample(NOW - timedelta(seconds=s), f"gpu-{n:02d}", gpus=(gpu,))
                    ),
                    "genperf_version": "0.1.0",
                }
                for n in range(nodes)
                for s in range(samples)
            ],
        )
        conn.commit()
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--nodes", type=int, default=64)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "genperf.db"
        fill(path, args.tasks, args.nodes, args.samples)
        store = SqlStore(f"sqlite:///{path}")
        queries = Queries(Settings(data_dir=Path(tmp)), lambda: store, now=lambda: NOW)
        listed = queries.nodes(24)
        assert len(listed.nodes) == args.nodes, len(listed.nodes)
        for name, fn in (
            ("nodes", lambda: queries.nodes(24)),
            ("report, one node", lambda: queries.analysis(24, Filters(nodes=["gpu-03"]))),
        ):
            m = timed(fn, args.repeats)
            wall, cpu, peak = m["wall"], m["cpu"], m["peak"]
            print(
                f"{name}: {args.tasks} tasks, {args.nodes} nodes: median {wall * 1000:.0f} ms "
                f"wall, {cpu * 1000:.0f} ms CPU; Python peak {peak:.1f} MiB"
            )
        store.close()


if __name__ == "__main__":
    main()
