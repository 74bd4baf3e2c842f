"""Fixtures every test directory shares.

PostgreSQL is real: ``GENPERF_TEST_POSTGRES_URL``, or the local server at 127.0.0.1:5432.
Each test gets a schema of its own, dropped afterwards, so tests are isolated and re-runnable.
Without a server the PostgreSQL tests are skipped, except under CI (``CI=true``) where a
missing server is a failure: a CI run must never pass by skipping the database it promises.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import NamedTuple

import pytest
from sqlalchemy import Engine, create_engine, text

from genperf.config import redact_url
from genperf.storage.engine import normalise_url

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("GENPERF_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    """An engine on the test server's database, or a skip (a failure under CI) without one."""
    url = postgres_url()
    engine = create_engine(normalise_url(url), connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except Exception as exc:
        engine.dispose()
        reason = (
            f"PostgreSQL not reachable at {redact_url(url)} "
            f"({str(getattr(exc, 'orig', exc)).strip().splitlines()[0]}); start it with "
            "`pg_ctlcluster 15 main start` (or set GENPERF_TEST_POSTGRES_URL)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    yield engine
    engine.dispose()


class PostgresSchema(NamedTuple):
    admin: Engine  # on the server's database, outside the schema
    name: str
    url: str  # connections to it work in the schema


@pytest.fixture
def postgres_schema(postgres_admin: Engine) -> Iterator[PostgresSchema]:
    """A fresh schema of its own (dropped afterwards)."""
    schema = f"genperf_test_{uuid.uuid4().hex[:12]}"
    with postgres_admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = postgres_admin.url.update_query_dict({"options": f"-csearch_path={schema}"})
    yield PostgresSchema(postgres_admin, schema, url.render_as_string(hide_password=False))
    with postgres_admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def postgres_schema_url(postgres_schema: PostgresSchema) -> str:
    """A URL whose connections work in a fresh schema of their own (dropped afterwards)."""
    return postgres_schema.url
