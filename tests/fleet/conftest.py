"""Fixtures for the fleet tests: a queue on SQLite or on the real PostgreSQL, each test in a
schema of its own (dropped afterwards).

PostgreSQL is ``GENPERF_TEST_POSTGRES_URL`` or the local server at 127.0.0.1:5432; without
one its tests are skipped, saying why, except under CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from genperf.config import redact_url
from genperf.storage.engine import normalise_url
from genperf.testing import postgres_schema

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The test server's URL, or a skip saying why (a failure under CI)."""
    url = os.environ.get("GENPERF_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    engine = create_engine(normalise_url(url), connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except Exception as exc:
        reason = f"PostgreSQL not reachable at {redact_url(url)}: {type(exc).__name__}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL whose connections work in a fresh schema of their own."""
    with postgres_schema(postgres_server, "genperf_fleet") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def queue_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'genperf.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
