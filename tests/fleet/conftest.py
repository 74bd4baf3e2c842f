"""Fixtures for the fleet tests: a queue on SQLite or on the real PostgreSQL, each test in a
schema of its own (dropped afterwards).

PostgreSQL is ``GENPERF_TEST_POSTGRES_URL`` or the local server at 127.0.0.1:5432; without
one its tests are skipped, saying why, except under CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from genperf.config import redact_url
from genperf.storage.engine import normalise_url

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Engine]:
    url = os.environ.get("GENPERF_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    engine = create_engine(normalise_url(url), connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except Exception as exc:
        engine.dispose()
        reason = f"PostgreSQL not reachable at {redact_url(url)}: {type(exc).__name__}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_url(postgres_server: Engine) -> Iterator[str]:
    """A URL whose connections work in a fresh schema of their own."""
    schema = f"genperf_fleet_{uuid.uuid4().hex[:12]}"
    with postgres_server.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = postgres_server.url.update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with postgres_server.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def queue_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'genperf.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
