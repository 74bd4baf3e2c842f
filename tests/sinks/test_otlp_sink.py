"""OTLP metrics: the mapping of tasks and samples onto OpenTelemetry instruments (read with the
SDK's InMemoryMetricReader), and real OTLP/HTTP export from a monitor to a receiver on
loopback that decodes the protobuf request."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from genperf.config import Settings
from genperf.monitor import PerformanceMonitor
from genperf.records import GpuReading, PhaseRecord, SystemSample, TaskStatus, utc_now
from genperf.sinks.otlp import OtlpSink
from genperf.testing import FakeCollector, make_task


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    out: dict[str, list[Any]] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                out[metric.name] = list(metric.data.data_points)
    return out


def test_tasks_and_the_latest_sample_map_onto_instruments() -> None:
    reader = InMemoryMetricReader()
    sink = OtlpSink(reader, node="gpu-1")
    phases = (PhaseRecord("denoise", 0.0, 200.0), PhaseRecord("vae_decode", 200.0, 30.0))
    sink.offer_task(make_task(generation_time_seconds=240.0, phases=phases))
    sink.offer_task(make_task(generation_time_seconds=260.0, phases=phases))
    sink.offer_task(make_task(model_type="t2v-5B", generation_time_seconds=100.0))
    sink.offer_task(make_task(status=TaskStatus.FAILED, error_category="out_of_memory_gpu"))
    sink.offer_task(make_task(status=TaskStatus.RUNNING))  # not finished: not counted
    sink.offer_sample(
        SystemSample(
            taken_at=utc_now(),
            node="gpu-1",
            cpu_percent=37.5,
            gpus=(GpuReading(index=1, name="NVIDIA H200", temperature_celsius=71.0),),
        )
    )
    got = points(reader)
    a14b = {"model_type": "t2v-A14B", "resolution_class": "720p"}
    durations = {p.attributes["model_type"]: p for p in got["genperf.task.duration"]}
    assert (durations["t2v-A14B"].count, durations["t2v-A14B"].sum) == (2, 500.0)
    assert durations["t2v-A14B"].explicit_bounds[8] == 300.0  # the spec's 720p target
    assert (durations["t2v-5B"].count, durations["t2v-5B"].sum) == (1, 100.0)
    finished = {
        (p.attributes["status"], p.attributes["error_category"], p.attributes["model_type"]): (
            p.value
        )
        for p in got["genperf.tasks.finished"]
    }
    assert finished == {
        ("completed", "none", "t2v-A14B"): 2,
        ("completed", "none", "t2v-5B"): 1,
        ("failed", "out_of_memory_gpu", "t2v-A14B"): 1,
    }
    phase = {p.attributes["phase"]: (p.count, p.sum) for p in got["genperf.task.phase.duration"]}
    assert phase == {"denoise": (2, 400.0), "vae_decode": (2, 60.0)}
    vram = [p for p in got["genperf.task.peak_vram"] if dict(p.attributes) == a14b]
    assert (vram[0].count, vram[0].sum) == (2, 80_000.0)
    (cpu,) = got["genperf.host.cpu_percent"]
    assert cpu.value == 37.5
    (temp,) = got["genperf.gpu.temperature_celsius"]
    assert (temp.value, dict(temp.attributes)) == (71.0, {"gpu": "1", "gpu.name": "NVIDIA H200"})
    assert "genperf.host.ram_used_bytes" not in got  # unknown: no point
    sink.close()


def test_model_types_are_bounded() -> None:
    reader = InMemoryMetricReader()
    sink = OtlpSink(reader, node="n")
    for i in range(60):
        sink.offer_task(make_task(model_type=f"model-{i}"))
    names = {p.attributes["model_type"] for p in points(reader)["genperf.task.duration"]}
    assert len(names) == 51 and "other" in names
    sink.close()


class Receiver(BaseHTTPRequestHandler):
    requests: list[ExportMetricsServiceRequest]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportMetricsServiceRequest()
        request.ParseFromString(body)
        self.server.requests.append((self.path, request))  # type: ignore[attr-defined]
        reply = ExportMetricsServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_monitor_exports_otlp_over_http(tmp_path: Path, receiver: ThreadingHTTPServer) -> None:
    endpoint = f"http://127.0.0.1:{receiver.server_address[1]}/v1/metrics"
    settings = Settings(
        monitoring_interval_seconds=3600.0,
        data_dir=tmp_path,
        node_name="otlp-node",
        otlp_endpoint=endpoint,
        otlp_export_seconds=3600.0,  # exports happen when the test flushes
    )
    collector = FakeCollector({"cpu_percent": 12.0})
    with PerformanceMonitor(settings, collectors=[collector]) as monitor:
        with monitor.track("otlp-1", model_type="tiny-wan", resolution="64x64", steps=2) as t:
            with t.phase("denoise"):
                pass
        assert monitor.flush_sinks(30)
        record = t.record
    assert record is not None and record.generation_time_seconds is not None
    path, request = receiver.requests[-1]  # type: ignore[attr-defined]
    assert path == "/v1/metrics"
    (resource_metrics,) = request.resource_metrics
    resource = {a.key: a.value.string_value for a in resource_metrics.resource.attributes}
    assert (resource["service.name"], resource["host.name"]) == ("genperf", "otlp-node")
    metrics = {m.name: m for sm in resource_metrics.scope_metrics for m in sm.metrics}
    (duration,) = metrics["genperf.task.duration"].histogram.data_points
    assert duration.count == 1
    assert duration.sum == pytest.approx(record.generation_time_seconds)
    attrs = {a.key: a.value.string_value for a in duration.attributes}
    assert attrs == {"model_type": "tiny-wan", "resolution_class": "tiny"}
    (cpu,) = metrics["genperf.host.cpu_percent"].gauge.data_points
    assert cpu.as_double == 12.0
    assert monitor.sinks[0].stats()["send_errors"] == 0


def test_an_unreachable_collector_is_counted_not_felt(tmp_path: Path) -> None:
    sink = OtlpSink.to_endpoint(
        "http://127.0.0.1:9/v1/metrics", node="n", export_seconds=3600.0, timeout_seconds=1.0
    )
    sink.offer_task(make_task())  # recorded in memory at once, whatever the endpoint does
    assert not sink.flush(5)
    assert sink.stats()["send_errors"] >= 1
    sink.close(timeout=2)
