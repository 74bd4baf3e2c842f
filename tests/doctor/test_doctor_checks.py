"""genperf doctor's checks on this real machine (no GPU) and, for the GPU branches, with
FakeNvml / FakeTorchCuda from genperf.testing; real SQLite and PostgreSQL, a real tiny-wan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from genperf.config import Settings
from genperf.doctor import Check, DoctorReport, Verdict, run_doctor
from genperf.doctor.core import guarded
from genperf.doctor.gpu import nvml_checks, torch_checks
from genperf.doctor.host import clock_check, peer_clock_check
from genperf.doctor.models import model_check
from genperf.doctor.store import monitor_checks
from genperf.records import SystemSample, utc_now
from genperf.storage import SqlStore
from genperf.testing import FakeGpu, FakeNvml, FakeTorchCuda

V = Verdict
pynvml = pytest.importorskip("pynvml")


def by_name(checks: object) -> dict[str, Check]:
    return {c.name: c for c in checks}  # type: ignore[attr-defined]


def report_of(*verdicts: Verdict) -> DoctorReport:
    checks = tuple(Check(f"c{i}", "t", v, "e") for i, v in enumerate(verdicts))
    return DoctorReport(checks, utc_now(), "n", "local")


# --- verdicts and exit codes -----------------------------------------------------------------


def test_exit_codes_follow_the_worst_verdict() -> None:
    assert report_of(V.OK, V.NOT_AVAILABLE).exit_code == 0
    assert report_of(V.OK, V.WARNING, V.NOT_AVAILABLE).exit_code == 1
    assert report_of(V.WARNING, V.FAILURE, V.OK).exit_code == 2
    assert report_of().exit_code == 0


def test_a_check_that_breaks_is_a_failure_not_a_crash() -> None:
    def broken() -> list[Check]:
        raise OSError("disk on fire")

    (check,) = guarded("disk_data", "Disk", broken)
    assert check.verdict is V.FAILURE and "OSError: disk on fire" in check.evidence


# --- this machine ------------------------------------------------------------------------------


def test_on_this_machine_nvml_is_not_available_with_the_reason(tmp_path: Path) -> None:
    report = run_doctor(Settings(data_dir=tmp_path))
    checks = by_name(report.checks)
    nvml = checks["nvml"]
    assert nvml.verdict is V.NOT_AVAILABLE
    assert nvml.evidence.startswith("not available: ")
    assert "NVML" in nvml.evidence or "nvidia-ml-py" in nvml.evidence
    assert nvml.fix
    expected = {
        "nvml",
        "torch",
        "database_reachable",
        "recent_samples",
        "sampler",
        "store_queue",
        "disk_data",
        "disk_models",
        "ram",
        "cpu_cores",
        "clock",
        "models",
    }
    assert expected <= set(checks)
    assert report.exit_code == max(c.verdict.rank for c in report.checks)
    data = report.to_dict()
    assert data["exit_code"] == report.exit_code
    assert sum(data["counts"].values()) == len(data["checks"])
    assert not (tmp_path / "genperf.db").exists()  # the doctor looks; it creates nothing


def test_gpu_monitoring_off_makes_no_nvml_call() -> None:
    nvml = FakeNvml([FakeGpu()])
    (check,) = nvml_checks(nvml, enabled=False)
    assert check.verdict is V.NOT_AVAILABLE and "enable_gpu_monitoring is false" in check.evidence
    assert nvml.calls == {}


# --- GPU branches, through the shipped fakes ------------------------------------------------


def test_a_healthy_gpu_host() -> None:
    nvml = FakeNvml([FakeGpu(name="NVIDIA H200")], driver_version="570.124.06")
    checks = by_name(nvml_checks(nvml))
    assert checks["nvml"].verdict is V.OK
    assert checks["nvml_driver"].evidence == "driver 570.124.06, supports CUDA up to 12.8"
    assert checks["gpus"].data["count"] == 1
    assert checks["gpu:0"].verdict is V.OK and "NVIDIA H200" in checks["gpu:0"].evidence
    assert nvml.init_count == 0  # initialised and shut down again
    torch = by_name(
        torch_checks(FakeTorchCuda(cuda_version="12.8"), driver_cuda="12.8", nvml_gpus=1)
    )
    assert [c.verdict for c in torch.values()] == [V.OK] * 4
    assert "NVIDIA H200" in torch["torch_cuda_available"].evidence


def test_torch_newer_than_the_driver_is_a_failure() -> None:
    checks = by_name(
        torch_checks(FakeTorchCuda(cuda_version="13.0"), driver_cuda="12.8", nvml_gpus=1)
    )
    mismatch = checks["torch_cuda_driver"]
    assert mismatch.verdict is V.FAILURE
    assert "13.0" in mismatch.evidence and "12.8" in mismatch.evidence
    assert mismatch.fix and "driver" in mismatch.fix


def test_cuda_unusable_with_a_gpu_present_is_a_failure_without_one_not_available() -> None:
    torch = FakeTorchCuda(available=False)
    assert by_name(torch_checks(torch, nvml_gpus=1))["torch_cuda_available"].verdict is V.FAILURE
    assert by_name(torch_checks(torch, nvml_gpus=0))["torch_cuda_available"].verdict is (
        V.NOT_AVAILABLE
    )


def test_unreadable_gpu_fields_are_named() -> None:
    gpus = [
        FakeGpu(errors={"nvmlDeviceGetPowerUsage": pynvml.NVML_ERROR_NOT_SUPPORTED}),
        FakeGpu(errors={"nvmlDeviceGetMemoryInfo": pynvml.NVML_ERROR_UNKNOWN}),
    ]
    checks = by_name(nvml_checks(FakeNvml(gpus)))
    assert checks["gpu:0"].verdict is V.WARNING and "power" in checks["gpu:0"].evidence
    assert checks["gpu:1"].verdict is V.FAILURE and "memory" in checks["gpu:1"].evidence


def test_nvml_that_cannot_start_is_not_available_with_the_reason() -> None:
    nvml = FakeNvml(init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    (check,) = nvml_checks(nvml)
    assert check.verdict is V.NOT_AVAILABLE and "Driver Not Loaded" in check.evidence


def test_the_driver_cuda_reaches_the_torch_check(tmp_path: Path) -> None:
    report = run_doctor(
        Settings(data_dir=tmp_path),
        nvml=FakeNvml([FakeGpu()], cuda_driver_version=12020),
        torch=FakeTorchCuda(cuda_version="12.8"),
    )
    check = by_name(report.checks)["torch_cuda_driver"]
    assert check.verdict is V.FAILURE and "up to CUDA 12.2" in check.evidence
    assert report.exit_code == 2


# --- the database ------------------------------------------------------------------------------


def test_a_live_sqlite_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'genperf.db'}"
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    store = SqlStore(url)
    store.save_samples([SystemSample(taken_at=now - timedelta(seconds=3), node="n", cpu_percent=1)])
    store.close()
    checks = by_name(run_doctor(Settings(data_dir=tmp_path, database_url=url), now=now).checks)
    for name in ("database_reachable", "database_writable", "database_schema", "recent_samples"):
        assert checks[name].verdict is V.OK, checks[name]
    assert checks["recent_samples"].data["age_seconds"] == 3.0
    later = by_name(
        run_doctor(
            Settings(data_dir=tmp_path, database_url=url), now=now + timedelta(hours=1)
        ).checks
    )
    assert later["recent_samples"].verdict is V.WARNING


def test_a_database_behind_or_ahead_of_the_schema(tmp_path: Path) -> None:
    import sqlalchemy

    url = f"sqlite:///{tmp_path / 'genperf.db'}"
    SqlStore(url).close()
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE genperf_alembic_version SET version_num = 'ffff'"))
    engine.dispose()
    check = by_name(run_doctor(Settings(data_dir=tmp_path, database_url=url)).checks)
    assert check["database_schema"].verdict is V.WARNING
    assert "ffff" in check["database_schema"].evidence


def test_an_unreachable_postgresql_is_a_failure(tmp_path: Path) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:1/test"  # nothing listens on port 1
    report = run_doctor(Settings(data_dir=tmp_path, database_url=url))
    check = by_name(report.checks)["database_reachable"]
    assert check.verdict is V.FAILURE and "127.0.0.1" in check.evidence
    assert report.exit_code == 2


@pytest.mark.postgres
def test_a_live_postgresql_database(tmp_path: Path, postgres_schema_url: str) -> None:
    url = postgres_schema_url
    SqlStore(url).close()
    checks = by_name(run_doctor(Settings(data_dir=tmp_path, database_url=url)).checks)
    for name in ("database_reachable", "database_writable", "database_schema"):
        assert checks[name].verdict is V.OK, checks[name]
    assert checks["recent_samples"].verdict is V.WARNING  # no monitor has sampled into it


# --- the monitor, the clock ------------------------------------------------------------------


def test_the_servers_monitor_checks() -> None:
    s = Settings(monitoring_interval_seconds=5.0, pending_task_queue_size=100)
    healthy = {
        "samples_taken": 10,
        "tasks_pending": 0,
        "tasks_dropped": 0,
        "samples_dropped": 0,
        "store_errors": 0,
    }
    checks = by_name(monitor_checks(s, True, healthy, 1.0))
    assert checks["sampler"].verdict is V.OK and checks["store_queue"].verdict is V.OK
    dropped = {**healthy, "tasks_dropped": 3}
    checks = by_name(monitor_checks(s, True, dropped, 1.0))
    assert (
        checks["store_queue"].verdict is V.WARNING and "3 task(s)" in checks["store_queue"].evidence
    )
    assert by_name(monitor_checks(s, False, healthy, None))["sampler"].verdict is V.FAILURE
    assert by_name(monitor_checks(s, True, healthy, 60.0))["sampler"].verdict is V.WARNING
    failing = by_name(monitor_checks(s, True, {**healthy, "collector_errors": 2}, 1.0))
    assert (
        failing["sampler"].verdict is V.WARNING
        and "failed 2 time(s)" in failing["sampler"].evidence
    )


def test_clock_sanity() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert clock_check(now, now - timedelta(seconds=5)).verdict is V.OK
    assert clock_check(now, now + timedelta(minutes=10)).verdict is V.WARNING
    assert clock_check(datetime(2001, 1, 1, tzinfo=UTC), None).verdict is V.FAILURE
    assert peer_clock_check(now, now + timedelta(seconds=30)).verdict is V.OK
    behind = peer_clock_check(now, now - timedelta(minutes=5))
    assert behind.verdict is V.WARNING and "300 s behind" in behind.evidence


def test_a_report_survives_its_json() -> None:
    report = report_of(V.OK, V.WARNING)
    back = DoctorReport.from_dict(report.to_dict())
    assert back.to_dict() == report.to_dict()
    assert back.with_checks(Check("x", "t", V.FAILURE, "e")).exit_code == 2


# --- model directories, real tiny-wan ------------------------------------------------------------


@pytest.mark.slow
def test_a_real_tiny_wan_directory_is_ok(tiny_wan: Path, tmp_path: Path) -> None:
    check = model_check(tiny_wan)
    assert check.verdict is V.OK, check.evidence
    assert {"transformer", "transformer_2", "vae", "text_encoder"} <= set(check.data["components"])
    assert check.data["weight_bytes"] > 0
    models = tmp_path / "data" / "models"
    models.mkdir(parents=True)
    (models / "tiny-wan-t2v").symlink_to(tiny_wan)
    found = by_name(run_doctor(Settings(data_dir=tmp_path / "data")).checks)
    assert found["model:tiny-wan-t2v"].verdict is V.OK  # found under data_dir/models


@pytest.mark.slow
def test_a_truncated_weight_file_is_found(model_copy: Path) -> None:
    weights = next((model_copy / "transformer").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-1000])
    check = model_check(model_copy)
    assert check.verdict is V.FAILURE
    assert f"transformer/{weights.name}: truncated" in check.evidence
    assert check.fix


@pytest.mark.slow
def test_a_missing_component_and_a_bad_config_are_found(model_copy: Path) -> None:
    import shutil

    shutil.rmtree(model_copy / "vae")
    (model_copy / "transformer_2" / "config.json").write_text("{not json")
    check = model_check(model_copy)
    assert check.verdict is V.FAILURE
    assert "vae/ is missing" in check.evidence
    assert "transformer_2/config.json is not valid JSON" in check.evidence


@pytest.mark.slow
def test_a_garbage_header_is_found(model_copy: Path) -> None:
    weights = next((model_copy / "vae").glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[8:16] = b"\xff" * 8  # the JSON header is no longer JSON
    weights.write_bytes(bytes(data))
    check = model_check(model_copy)
    assert check.verdict is V.FAILURE and "unreadable header" in check.evidence
