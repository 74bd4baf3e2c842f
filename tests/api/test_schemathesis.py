"""Property-based conformance: schemathesis generates requests from the OpenAPI document and
checks every response against it (no server error, documented status codes, content types
and response schemas), in process against the real app over a real SQLite store.

The app has tokens configured; requests carry the admin token, so every route runs past
authentication. The number of examples per operation is bounded so the run stays well
under a minute.

The app is built at import (schemathesis' ``from_fixture`` does not work with this pytest)
in a temporary directory that the module's teardown removes.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import schemathesis
from api_support import ADMIN_TOKEN, TOKENS
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi

from genperf.api import ApiSettings, create_app
from genperf.config import Settings
from genperf.records import TaskStatus, utc_now
from genperf.storage import SqlStore
from genperf.testing import make_task

EXAMPLES = 25

_DIR = Path(tempfile.mkdtemp(prefix="genperf-schemathesis-"))
_STORE = SqlStore(f"sqlite:///{_DIR / 'genperf.db'}")
_APP = create_app(
    Settings(monitoring_interval_seconds=3600.0, data_dir=_DIR, node_name="fuzz"),
    store=_STORE,
    api_settings=ApiSettings(
        api_tokens=TOKENS, allowed_hosts=("testserver",), report_cache_seconds=1.0
    ),
    environ={},
)
# The admin token, applied the way schemathesis knows of (so it can also leave it out and
# expect a 401).
_CONFIG = SchemathesisConfig.from_dict(
    {"auth": {"openapi": {"HTTPBearer": {"bearer": ADMIN_TOKEN}}}}
)
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP, config=_CONFIG)


@pytest.fixture(scope="module", autouse=True)
def _seeded_store() -> Iterator[None]:
    now = utc_now()
    for i in range(40):
        _STORE.save_task(
            make_task(
                task_id=f"seed-{i}",
                started_at=now - timedelta(hours=i),
                status=TaskStatus.FAILED if i % 7 == 0 else TaskStatus.COMPLETED,
                error_category="out_of_memory_gpu" if i % 7 == 0 else None,
            )
        )
    yield
    asgi.shutdown_lifespans()  # stops the app's monitor before its store goes
    _STORE.close()
    shutil.rmtree(_DIR, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
def test_the_api_conforms_to_its_openapi_document(case: schemathesis.Case) -> None:
    case.call_and_validate()
