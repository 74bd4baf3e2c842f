"""Data at rest: the SQLite files are private, and a cleared prompt leaves no bytes behind."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from genperf.generation.queue import RequestQueue
from genperf.generation.request import GenerationRequest, RequestStatus
from genperf.storage import SqlStore
from genperf.testing import make_task


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The usual umask (files 0644, directories 0755), whatever the test runner's is."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_database_is_private_directory_and_every_file(tmp_path, loose_umask):
    data_dir = tmp_path / "fresh" / "genperf"
    db = data_dir / "genperf.db"
    store = SqlStore(f"sqlite:///{db}")
    try:
        store.save_task(make_task(task_id="private-1"))
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
        assert all(f.exists() for f in files)  # WAL mode, connection open
        assert _mode(data_dir) == 0o700
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        store.close()


def test_an_existing_database_others_could_read_is_tightened(tmp_path, loose_umask):
    db = tmp_path / "genperf.db"
    SqlStore(f"sqlite:///{db}").close()
    os.chmod(db, 0o644)
    store = SqlStore(f"sqlite:///{db}")
    try:
        store.save_task(make_task(task_id="private-2"))
        assert _mode(db) == 0o600
        assert _mode(Path(f"{db}-wal")) == 0o600
    finally:
        store.close()


PROMPTS = [
    "a quokka juggling seven tangerines on the moon",
    "the secret recipe of grandmother's plum dumplings",
    "zebra-" + "striped lighthouse " * 220,  # over a page: it lives in overflow pages
]


def _request(n: int, prompt: str) -> GenerationRequest:
    return GenerationRequest(
        task_id=f"secret-{n}",
        model_type="tiny-wan-t2v",
        prompt=prompt,
        width=64,
        height=64,
        steps=2,
        frames=5,
    )


def _bytes_of_database(db: Path) -> bytes:
    return b"".join(
        Path(f"{db}{suffix}").read_bytes()
        for suffix in ("", "-wal", "-shm")
        if Path(f"{db}{suffix}").exists()
    )


def test_a_finished_requests_prompt_is_gone_from_the_file_and_the_wal(tmp_path):
    db = tmp_path / "genperf.db"
    url = f"sqlite:///{db}"
    store = SqlStore(url)  # the monitor's tables share the file, as in the service
    queue = RequestQueue(url)
    try:
        for n, prompt in enumerate(PROMPTS):
            queue.add(_request(n, prompt))
            store.save_task(make_task(task_id=f"secret-{n}"))  # other writes around them
        while (claimed := queue.claim_next()) is not None:
            assert claimed.prompt in PROMPTS  # the prompt was really stored
            before = _bytes_of_database(db)
            assert claimed.prompt[:40].encode() in before
            queue.finish(claimed.task_id, RequestStatus.COMPLETED)
        raw = _bytes_of_database(db)
        for prompt in PROMPTS:
            assert prompt[:40].encode() not in raw
            assert prompt[-40:].encode() not in raw
        assert queue.get("secret-2").status is RequestStatus.COMPLETED  # the rows remain
    finally:
        queue.close()
        store.close()
