"""A new TaskRecord field is one edit in records.py plus a migration, and shows up everywhere.

The test copies the package, adds one field to ``TaskRecord`` (the one edit) and one Alembic
revision adding its column, then runs the copy in a fresh interpreter: the monitor takes the
field through ``update_task_metrics`` and the API through its task ingestion (bounded like
its kin), the store keeps it, and the API (its pages, its task view, its OpenAPI document,
with the field's type), the CLI's ``tasks --json`` and both exports show it. Nothing else of
the package is edited.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import genperf

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

FIELD = "probe_decode_seconds"
ANCHOR = "    monitor_instance: str | None = None"

MIGRATION = '''
"""Test revision: the column of TaskRecord.{field}."""

import sqlalchemy as sa
from alembic import op

revision = "test_{field}"
down_revision = {head!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("generation_tasks", sa.Column("{field}", sa.Float))


def downgrade() -> None:
    op.drop_column("generation_tasks", "{field}")
'''

SCRIPT = """
import json, sys
from pathlib import Path
from fastapi.testclient import TestClient
from genperf import PerformanceMonitor
from genperf.api import ApiSettings, create_app
from genperf.config import Settings

data = Path(sys.argv[1])
settings = Settings(data_dir=data, enable_gpu_monitoring=False)
monitor = PerformanceMonitor(settings)
monitor.start_task_monitoring("probe-1", "tiny-wan-t2v", "64x64", 2)
monitor.update_task_metrics("probe-1", {field}=1.25)
monitor.complete_task_monitoring("probe-1", success=True)
monitor.close()

token = "admin-token-0123456789abcdef"
app = create_app(settings, api_settings=ApiSettings(api_tokens=(f"admin:{{token}}",)))
headers = {{"Authorization": f"Bearer {{token}}"}}
P = "/api/v1/performance"
with TestClient(app, base_url="http://localhost", client=("127.0.0.1", 5000)) as client:
    started = client.post(f"{{P}}/tasks", headers=headers, json={{"task_id": "probe-2",
        "model_type": "tiny-wan-t2v", "{field}": 0.5}})
    patched = client.patch(f"{{P}}/tasks/probe-2", headers=headers, json={{"{field}": 2.5}})
    refused = client.patch(f"{{P}}/tasks/probe-2", headers=headers, json={{"{field}": -1}})
    client.post(f"{{P}}/tasks/probe-2/complete", headers=headers)
    out = {{
        "ingested": [started.json()["{field}"], patched.json()["{field}"], refused.status_code],
        "page": client.get(f"{{P}}/metrics", headers=headers).json()["metrics"][-1],
        "task": client.get(f"{{P}}/tasks/probe-1", headers=headers).json(),
        "openapi": client.get("/openapi.json", headers=headers).json(),
        "export": client.post(f"{{P}}/export", headers=headers).json()["metrics"][0],
        "csv": client.post(f"{{P}}/export?format=csv", headers=headers).text,
    }}
print(json.dumps(out))
"""


@pytest.fixture
def patched(tmp_path: Path) -> Path:
    """A copy of the package with the one edit to records.py and its migration."""
    from genperf.storage.migrate import head_revision

    src = tmp_path / "src"
    shutil.copytree(
        Path(genperf.__file__).parent,
        src / "genperf",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    records = src / "genperf" / "records.py"
    text = records.read_text()
    assert text.count(ANCHOR) == 1
    records.write_text(text.replace(ANCHOR, f"{ANCHOR}\n    {FIELD}: float | None = None"))
    versions = src / "genperf" / "storage" / "migrations" / "versions"
    migration = MIGRATION.format(field=FIELD, head=head_revision())
    (versions / f"9999_test_{FIELD}.py").write_text(migration)
    return src


def run(src: Path, *args: str, data: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENPERF_")}
    env.update(PYTHONPATH=str(src), GENPERF_DATA_DIR=str(data), COLUMNS="200")
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_a_new_task_field_shows_up_in_the_api_the_cli_the_exports_and_openapi(
    patched: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    result = run(patched, "-c", textwrap.dedent(SCRIPT.format(field=FIELD)), str(data), data=data)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["ingested"] == [0.5, 2.5, 422]  # the API takes it in, bounded like its kin
    assert seen["page"][FIELD] == 1.25
    assert seen["task"][FIELD] == 1.25
    assert seen["export"][FIELD] == 1.25
    inputs = seen["openapi"]["components"]["schemas"]["TaskMetricsIn"]["properties"][FIELD]
    assert {"type": "number", "minimum": 0.0} in inputs["anyOf"]
    header, row = seen["csv"].splitlines()[:2]
    assert row.split(",")[header.split(",").index(FIELD)] == "1.25"
    prop = seen["openapi"]["components"]["schemas"]["TaskOut"]["properties"][FIELD]
    assert {"type": "number"} in prop["anyOf"]  # with its type, not just its name

    cli = run(patched, "-m", "genperf", "tasks", "--json", data=data)
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert [t[FIELD] for t in json.loads(cli.stdout)["metrics"]] == [2.5, 1.25]
    exported = tmp_path / "export.json"
    cli = run(patched, "-m", "genperf", "export", "-o", str(exported), data=data)
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert json.loads(exported.read_text())["metrics"][0][FIELD] == 1.25


def test_the_copy_is_only_that_one_edit_and_the_migration(patched: Path) -> None:
    """The test above proves nothing if the copy differs in more than the field."""
    original = Path(genperf.__file__).parent
    changed = []
    for path in sorted((patched / "genperf").rglob("*")):
        if path.is_file():
            twin = original / path.relative_to(patched / "genperf")
            if not twin.exists() or twin.read_bytes() != path.read_bytes():
                changed.append(str(path.relative_to(patched)))
    assert changed == [
        "genperf/records.py",
        f"genperf/storage/migrations/versions/9999_test_{FIELD}.py",
    ]
