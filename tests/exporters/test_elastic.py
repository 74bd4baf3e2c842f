"""Elasticsearch: the committed index template maps every field of the documents with the
right type; the NDJSON export is byte for byte the bulk body the official client serializes;
the sink keeps its batch while the cluster is unreachable. With GENPERF_TEST_ELASTICSEARCH_URL
set, the sink and the template are also tested against that real cluster."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch, helpers

from genperf.exporters import elastic
from genperf.records import PhaseRecord, TaskRecord, TaskStatus
from genperf.sinks.base import QueueLimits
from genperf.sinks.elastic import ElasticSink
from genperf.testing import make_task, wait_until

TEMPLATE = Path(__file__).parents[2] / "deploy/elasticsearch/genperf-tasks.index-template.json"


def rich_task(**overrides: Any) -> TaskRecord:
    """A task with every field known, so every field is in its document."""
    values: dict[str, Any] = {
        "status": TaskStatus.FAILED,
        "frames": 81,
        "weights_memory_mapped": True,
        "phases": (
            PhaseRecord(
                "denoise",
                1.5,
                200.0,
                peak_vram_allocated_mb=1.0,
                peak_vram_mb=2.0,
                peak_ram_mb=3.0,
                failed=True,
            ),
        ),
        "step_times_seconds": (1.25, 1.0),
        "peak_vram_reserved_mb": 41_000.0,
        "peak_process_rss_mb": 900.0,
        "gpu_throttle_reasons": ("sw_thermal",),
        "error_category": "out_of_memory_gpu",
        "error_message": "CUDA out of memory. Tried to allocate 2 GiB — «vae»",
        "failed_phase": "vae_decode",
        "recovery_suggestions": ("Enable VAE tiling",),
        "current_phase": "vae_decode",
        "monitor_instance": "n:1:2.00",
        "gpu_index": 2,
    }
    values.update(overrides)
    return make_task(**values)


def test_the_committed_template_is_the_generated_one() -> None:
    assert json.loads(TEMPLATE.read_text()) == elastic.index_template()


_JSON_TYPES = {
    "keyword": str,
    "text": str,
    "date": str,
    "double": (int, float),
    "long": int,
    "boolean": bool,
}


def _check(doc: dict[str, Any], properties: dict[str, Any], where: str) -> None:
    assert set(doc) == set(properties), where  # every field mapped, no mapping unused
    for name, value in doc.items():
        mapping = properties[name]
        if mapping["type"] == "nested":
            for item in value:
                _check(item, mapping["properties"], f"{where}{name}.")
            continue
        for item in value if isinstance(value, list) else [value]:
            assert isinstance(item, _JSON_TYPES[mapping["type"]]), (where + name, item)
            if mapping["type"] == "long":
                assert not isinstance(item, bool), where + name


def test_every_field_of_a_document_is_mapped_with_its_type() -> None:
    record = rich_task()
    doc = elastic.task_document(record)
    assert all(v is not None for v in doc.values())  # the record really has every field
    assert doc["@timestamp"] == record.started_at.isoformat()
    _check(doc, elastic.mappings()["properties"], "")


def test_the_ndjson_export_is_the_clients_own_bulk_body() -> None:
    records = [rich_task(), make_task(), make_task(task_id="ü/é")]
    exported = "".join(elastic.render_ndjson(records, "perf", chunk_documents=2)).encode()
    # What the sink hands the bulk helpers, expanded and serialized as the client does.
    client = Elasticsearch("http://127.0.0.1:9")
    try:
        lines: list[Any] = []
        for action in (elastic.bulk_action(r, "perf") for r in records):
            head, source = helpers.expand_action(action)
            lines += [head, source]
        body = client.transport.serializers.dumps(lines, mimetype=elastic.NDJSON_TYPE)
    finally:
        client.close()
    assert exported == body
    first_action = json.loads(exported.splitlines()[0])
    assert first_action == {"index": {"_index": "perf", "_id": records[0].run_id}}


def test_the_sink_keeps_its_batch_while_the_cluster_is_unreachable() -> None:
    sink = ElasticSink(
        "http://127.0.0.1:9", "genperf-tasks", QueueLimits(batch_size=10, flush_seconds=0.05)
    )
    sink.start()
    for _ in range(3):
        sink.offer_task(make_task())
    wait_until(lambda: sink.stats()["send_errors"] >= 1, timeout=30.0, what="a failed send")
    stats = sink.stats()
    assert (stats["queued"], stats["tasks_dropped"], stats["tasks_sent"]) == (3, 0, 0)
    sink.close(timeout=5)
    assert sink.stats()["tasks_dropped"] == 3  # counted, never silently lost


@pytest.fixture
def elasticsearch_url() -> str:
    url = os.environ.get("GENPERF_TEST_ELASTICSEARCH_URL")
    if not url:
        pytest.skip(
            "no Elasticsearch server on this machine: set GENPERF_TEST_ELASTICSEARCH_URL "
            "(e.g. http://127.0.0.1:9200) to test the sink and the template against one"
        )
    return url


def test_a_real_cluster_indexes_what_the_store_holds(elasticsearch_url: str) -> None:
    index = f"genperf-test-{uuid.uuid4().hex[:8]}"
    client = Elasticsearch(elasticsearch_url)
    try:
        template = elastic.index_template(index)
        meta = template.pop("_meta")
        client.indices.put_index_template(name=index, meta=meta, **template)
        records = [rich_task(), make_task(), make_task(status=TaskStatus.INTERRUPTED)]
        sink = ElasticSink(elasticsearch_url, index, QueueLimits(flush_seconds=0.05))
        sink.start()
        for record in records:
            sink.offer_task(record)
        assert sink.flush(60)
        sink.offer_task(records[0])  # sent again: replaced, not duplicated
        assert sink.flush(60)
        sink.close()
        client.indices.refresh(index=index)
        assert client.count(index=index)["count"] == 3
        for record in records:
            got = client.get(index=index, id=record.run_id)["_source"]
            assert got == elastic.task_document(record)
        mapping = client.indices.get_mapping(index=index)[index]["mappings"]
        assert mapping["properties"] == elastic.mappings()["properties"]
    finally:
        client.options(ignore_status=404).indices.delete(index=index)
        client.options(ignore_status=404).indices.delete_index_template(name=index)
        client.close()
