"""Fixtures for the API tests: the real app over a real SQLite file, a monitor whose sampler
readings are scripted (this machine has no GPU), and clients on loopback or elsewhere."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import BASE, LOOPBACK, REMOTE, TOKENS, readings
from fastapi import FastAPI
from fastapi.testclient import TestClient

from genperf.api import ApiSettings, create_app
from genperf.collectors import ProcessPeakMemory, TorchMemoryProbe
from genperf.config import Settings
from genperf.monitor import PerformanceMonitor
from genperf.storage import SqlStore
from genperf.testing import FakeCollector, FakeTorchCuda


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # A long interval: samples are taken on demand (current_sample), never in the background.
    return Settings(monitoring_interval_seconds=3600.0, data_dir=tmp_path, node_name="api-node")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    opened = SqlStore(f"sqlite:///{tmp_path / 'genperf.db'}")
    yield opened
    opened.close()


@pytest.fixture
def monitor(settings: Settings, store: SqlStore) -> Iterator[PerformanceMonitor]:
    m = PerformanceMonitor(
        settings,
        collectors=[FakeCollector(readings, name="scripted")],
        store=store,
        torch_probe=TorchMemoryProbe(FakeTorchCuda(available=False)),
        process_memory=ProcessPeakMemory(),
    )
    yield m
    m.close()


AppFactory = Callable[..., FastAPI]


@pytest.fixture
def make_app(settings: Settings, monitor: PerformanceMonitor) -> AppFactory:
    def make(**api: Any) -> FastAPI:
        api.setdefault("report_cache_seconds", 0.0)
        return create_app(settings, monitor=monitor, api_settings=ApiSettings(**api), environ={})

    return make


@pytest.fixture
def app(make_app: AppFactory) -> FastAPI:
    return make_app()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url=BASE, client=LOOPBACK) as c:
        yield c


@pytest.fixture
def token_client(make_app: AppFactory) -> Iterator[TestClient]:
    """A client of an app with tokens configured, from a remote address, no token sent."""
    with TestClient(make_app(api_tokens=TOKENS), base_url=BASE, client=REMOTE) as c:
        yield c
