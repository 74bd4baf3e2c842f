"""Migrations on SQLite and PostgreSQL: fresh database, re-open at head, adopting a service's
table, refusing a table genperf cannot share or a schema newer than itself."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, String, event, inspect, text

from genperf.errors import StoreError
from genperf.storage import SqlStore, TaskQuery, upgrade_database
from genperf.storage.engine import make_engine
from genperf.storage.migrate import alembic_config, current_revision, head_revision
from genperf.storage.schema import VERSION_TABLE, metadata
from genperf.testing import make_tasks

SPEC_COLUMNS = {  # the spec's ALTER TABLE statements: name -> (type, default)
    "model_used": ("VARCHAR(100)", None),
    "generation_time_seconds": ("FLOAT", 0.0),
    "peak_vram_usage_mb": ("FLOAT", 0.0),
    "optimizations_applied": ("TEXT", None),
    "error_category": ("VARCHAR(50)", None),
    "recovery_suggestions": ("TEXT", None),
}

# A generation service's own task table, as a service might have made it, already carrying
# two of the spec's columns.
SERVICE_TABLE = {
    "sqlite": """CREATE TABLE generation_tasks (
        id INTEGER PRIMARY KEY, prompt TEXT, status VARCHAR(20) NOT NULL DEFAULT 'pending',
        created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
        model_used VARCHAR(100), generation_time_seconds FLOAT DEFAULT 0.0)""",
    "postgresql": """CREATE TABLE generation_tasks (
        id SERIAL PRIMARY KEY, prompt TEXT, status VARCHAR(20) NOT NULL DEFAULT 'pending',
        created_at TIMESTAMPTZ DEFAULT now(),
        model_used VARCHAR(100), generation_time_seconds FLOAT DEFAULT 0.0)""",
}


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    made = make_engine(db_url)
    yield made
    made.dispose()


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return current_revision(conn)


def _default(column: dict[str, object]) -> float | None:
    """A numeric server default as a number: SQLite says '0.0', PostgreSQL '0'::double..."""
    found = re.search(r"-?\d+(\.\d*)?", str(column["default"] or ""))
    return float(found.group()) if found else None


def _type_name(column: dict[str, object]) -> str:
    name = str(column["type"]).upper()
    return {"DOUBLE PRECISION": "FLOAT", "REAL": "FLOAT"}.get(name, name)


def test_fresh_database_is_built_exactly_as_the_schema_says(db_url: str, engine: Engine) -> None:
    upgrade_database(db_url)

    assert _revision(engine) == head_revision()
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, metadata) == []
    columns = {c["name"]: c for c in inspect(engine).get_columns("generation_tasks")}
    for name, (type_name, default) in SPEC_COLUMNS.items():
        assert _type_name(columns[name]) == type_name  # type: ignore[arg-type]
        assert _default(columns[name]) == default  # type: ignore[arg-type]
    assert not columns["run_id"]["nullable"]


def test_reopening_at_head_changes_nothing(db_url: str, engine: Engine) -> None:
    first = SqlStore(db_url)
    tasks = make_tasks(3)
    for record in tasks:
        first.save_task(record)
    first.close()

    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    upgrade_database(engine)
    assert not any(s.lstrip().upper().startswith(("CREATE", "ALTER")) for s in statements)

    again = SqlStore(db_url)
    assert again.query_tasks(TaskQuery(newest_first=False)) == tasks
    again.close()
    assert _revision(engine) == head_revision()


def test_concurrent_first_opens_migrate_once(db_url: str, engine: Engine) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(upgrade_database, db_url) for _ in range(4)]:
            future.result()
    assert _revision(engine) == head_revision()


def test_concurrent_first_opens_of_a_new_sqlite_file_never_fail(tmp_path) -> None:
    """Switching a new file to WAL needs an exclusive lock that SQLite refuses at once, without
    its busy wait, while another connection opens the file: it used to fail about one round
    in ten of this. Many rounds, so the race is met."""
    for round_ in range(30):
        url = f"sqlite:///{tmp_path / str(round_) / 'genperf.db'}"
        with ThreadPoolExecutor(max_workers=4) as pool:
            for future in [pool.submit(upgrade_database, url) for _ in range(4)]:
                future.result()


def test_adopts_an_existing_service_table_in_place(db_url: str, engine: Engine) -> None:
    dialect = engine.dialect.name
    with engine.begin() as conn:
        conn.execute(text(SERVICE_TABLE[dialect]))
        conn.execute(text("INSERT INTO generation_tasks (prompt, status) VALUES ('a cat', 'done')"))
        conn.execute(text("INSERT INTO generation_tasks (prompt) VALUES ('a dog')"))

    store = SqlStore(db_url)
    tasks = make_tasks(4)
    for record in tasks:
        store.save_task(record)

    # genperf reads and writes its own records, and never sees the service's rows.
    assert store.query_tasks(TaskQuery(newest_first=False)) == tasks
    assert store.count_tasks(TaskQuery()) == 4
    assert store.get_run(tasks[0].run_id) == tasks[0]

    # The service's rows and columns are intact, and it can still insert its own rows.
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO generation_tasks (prompt) VALUES ('a bird')"))
        rows = conn.execute(
            text(
                "SELECT prompt, status, created_at, generation_time_seconds, run_id "
                "FROM generation_tasks WHERE run_id IS NULL ORDER BY id"
            )
        ).all()
    assert [(r.prompt, r.status) for r in rows] == [
        ("a cat", "done"),
        ("a dog", "pending"),
        ("a bird", "pending"),
    ]
    assert all(r.created_at is not None and r.generation_time_seconds == 0.0 for r in rows)
    store.close()

    inspector = inspect(engine)
    columns = {c["name"]: c for c in inspector.get_columns("generation_tasks")}
    assert {"prompt", "created_at"} <= set(columns)
    assert set(metadata.tables["generation_tasks"].columns.keys()) <= set(columns)
    for name, (type_name, default) in SPEC_COLUMNS.items():
        assert _type_name(columns[name]) == type_name  # type: ignore[arg-type]
        assert _default(columns[name]) == default  # type: ignore[arg-type]
    indexes = {ix["name"]: ix for ix in inspector.get_indexes("generation_tasks")}
    assert indexes["uq_generation_tasks_run_id"]["unique"]
    assert indexes["uq_generation_tasks_run_id"]["column_names"] == ["run_id"]
    assert {"ix_generation_tasks_started_at", "ix_generation_tasks_node_status"} <= set(indexes)
    assert _revision(engine) == head_revision()


def test_refuses_a_service_table_it_could_not_insert_into(db_url: str, engine: Engine) -> None:
    blob = "BLOB" if engine.dialect.name == "sqlite" else "BYTEA"
    with engine.begin() as conn:
        conn.execute(
            text(f"CREATE TABLE generation_tasks (id INTEGER PRIMARY KEY, image {blob} NOT NULL)")
        )

    # Text, numbers, booleans and times get a neutral value (tests/storage/test_adopt.py);
    # binary data has none.
    with pytest.raises(StoreError, match=r"image .*NOT NULL without a default"):
        SqlStore(db_url)
    assert _revision(engine) is None  # nothing half-done: the upgrade rolled back
    assert not inspect(engine).has_table("system_samples")


def test_refuses_a_schema_newer_than_itself(db_url: str, engine: Engine) -> None:
    upgrade_database(db_url)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))

    with pytest.raises(StoreError, match="upgrade genperf"):
        SqlStore(db_url)


def test_downgrade_keeps_an_adopted_service_table(db_url: str, engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text(SERVICE_TABLE[engine.dialect.name]))
        conn.execute(text("INSERT INTO generation_tasks (prompt) VALUES ('kept')"))
    upgrade_database(db_url)

    command.downgrade(alembic_config(url=db_url), "base")  # the developer path: a URL only

    inspector = inspect(engine)
    assert not inspector.has_table("system_samples")
    assert "uq_generation_tasks_run_id" not in {
        ix["name"] for ix in inspector.get_indexes("generation_tasks")
    }
    with engine.connect() as conn:
        assert conn.execute(text("SELECT prompt FROM generation_tasks")).scalar_one() == "kept"


def test_downgrade_drops_a_table_genperf_made(db_url: str, engine: Engine) -> None:
    upgrade_database(db_url)
    command.downgrade(alembic_config(url=db_url), "base")
    assert not inspect(engine).has_table("generation_tasks")
    upgrade_database(db_url)  # and back
    assert _revision(engine) == head_revision()


def test_schema_columns_are_the_record_fields() -> None:
    from genperf.records import SAMPLE_FIELDS, TASK_FIELDS

    tasks = metadata.tables["generation_tasks"]
    samples = metadata.tables["system_samples"]
    assert set(tasks.columns.keys()) == {"id", *TASK_FIELDS}
    assert set(samples.columns.keys()) == {
        "id",
        "taken_at",
        "node",
        "genperf_version",
        *SAMPLE_FIELDS,
    }
    assert isinstance(tasks.c.run_id.type, String)
    assert tasks.c.run_id.type.length == 64
    assert tasks.c.task_id.type.length == 200  # type: ignore[attr-defined]
