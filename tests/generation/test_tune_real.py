"""`genperf tune` on the real tiny Wan2.2 model writes a preset the service then runs with."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from genperf.cli.app import app
from genperf.config import load_settings
from genperf.generation import TINY_WAN, GenerationService
from genperf.generation.presets import PRESET_NAMES, preset
from genperf.generation.request import RequestStatus
from genperf.monitor import PerformanceMonitor
from genperf.storage import SqlStore

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:unclosed file.*safetensors:ResourceWarning"),
]


def test_tune_writes_the_fastest_preset_and_the_service_uses_it(data_dir, tmp_path, monkeypatch):
    for name in ("GENPERF_URL", "GENPERF_TOKEN", "GENPERF_CONFIG", "GENPERF_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'genperf.db'}"
    config = tmp_path / "genperf.json"
    config.write_text(
        json.dumps({"performance_monitoring": {"data_dir": str(data_dir), "database_url": url}})
    )
    args = ["--config", str(config), "tune", TINY_WAN, "--resolution", "64x64"]
    result = CliRunner().invoke(app, [*args, "--frames", "5", "--steps", "2", "--repeats", "1"])
    assert result.exit_code == 0, result.output
    assert "presets measured" in result.output and "vae_tiling" in result.output
    chosen = json.loads(config.read_text())["performance_monitoring"]["tuned_presets"][TINY_WAN]
    assert chosen in PRESET_NAMES
    store = SqlStore(url)
    try:
        (change,) = store.configuration_changes()
    finally:
        store.close()
    assert (change.key, change.old_value, change.new_value, change.model_type) == (
        f"tuned_presets.{TINY_WAN}",
        None,
        chosen,
        TINY_WAN,
    )
    assert change.after_time_seconds > 0 and change.before_time_seconds > 0

    settings = load_settings(config)
    assert settings.tuned_presets == {TINY_WAN: chosen}
    monitor = PerformanceMonitor(settings)
    service = GenerationService(monitor, poll_seconds=0.1)
    try:
        service.start()
        task_id = service.submit(TINY_WAN, "a cat", "64x64", 2, 5)
        assert service.wait_idle(300)
        task = service.get(task_id)
    finally:
        service.close()
        monitor.close()
    assert task.status is RequestStatus.COMPLETED
    (decision,) = task.tuning
    assert decision.preset == chosen and "tuned preset" in decision.reason
    assert set(preset(chosen).tokens) <= set(task.metrics.optimizations_applied)
