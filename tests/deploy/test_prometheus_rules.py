"""Rule files: written from the settings, checked and unit-tested by the real promtool, and in
agreement with genperf's own generation-time verdicts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from deploy_support import DEPLOY, ROOT, RULES_DIR, run_tool, tool
from prometheus_client.parser import text_string_to_metric_families

from genperf.analysis.benchmarks import BenchmarkStatus, evaluate_benchmarks
from genperf.config import BenchmarkTargets, PerformanceThresholds, Settings
from genperf.exporters.prometheus import TaskOutcomes
from genperf.exporters.prometheus_details import duration_buckets
from genperf.exporters.prometheus_rules import (
    ALERTING_FILE,
    RECORDING_FILE,
    RuleTiming,
    rule_files,
)
from genperf.testing import make_task


def test_the_committed_rule_files_are_what_genperf_rules_writes_from_defaults(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "genperf", "rules", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for name in (RECORDING_FILE, ALERTING_FILE):
        assert (tmp_path / name).read_text() == (RULES_DIR / name).read_text(), (
            f"{name} is stale: run `genperf rules -o deploy/prometheus/rules`"
        )
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644


def test_promtool_accepts_the_rule_files():
    result = run_tool(tool("promtool"), "check", "rules", *sorted(RULES_DIR.glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_of_the_committed_rules_pass():
    tests = Path(__file__).parent / "promtool" / "genperf-alerts.test.yml"
    result = run_tool(tool("promtool"), "test", "rules", tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_scrape_and_alertmanager_configs_are_valid(tmp_path):
    token = tmp_path / "genperf.token"
    token.write_text("read-token-0123456789abcdef\n")
    config = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    assert "credentials_file: /etc/prometheus/genperf.token" in config  # the token stays out
    (tmp_path / "rules").symlink_to(RULES_DIR)
    (tmp_path / "prometheus.yml").write_text(
        config.replace("/etc/prometheus/genperf.token", str(token))
    )
    result = run_tool(tool("promtool"), "check", "config", tmp_path / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    targets = json.loads((DEPLOY / "prometheus" / "targets" / "genperf.example.json").read_text())
    assert all(group["targets"] for group in targets)
    result = run_tool(tool("amtool"), "check-config", DEPLOY / "alertmanager" / "alertmanager.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_thresholds_come_from_the_settings():
    settings = Settings(
        performance_thresholds=PerformanceThresholds(
            max_generation_time_720p=200.0,
            max_generation_time_480p=60.0,  # a class of the user's own
            max_vram_usage_percent=80.0,
            max_ram_usage_percent=70.0,
            min_success_rate=0.99,
        ),
        benchmark_targets=BenchmarkTargets(generation_time_acceptable_factor=2.0),
    )
    files = rule_files(settings, RuleTiming(window="30m"))
    recording, alerts = files[RECORDING_FILE], files[ALERTING_FILE]
    assert 'resolution_class="720p", le="200.0"' in recording
    assert 'resolution_class="720p", le="400.0"' in recording  # acceptable: 2 x 200
    assert 'resolution_class="480p", le="60.0"' in recording
    assert "[30m]" in recording and "[1h]" not in recording
    assert "percent > 80\n" in alerts
    assert "genperf_host_ram_percent > 70\n" in alerts
    assert "job:genperf_task_success:ratio < 0.99\n" in alerts
    # Every line a rule counts within is a bucket of the histogram genperf exposes.
    bounds = set(duration_buckets(settings))
    for le in re.findall(r'le="([0-9.e+]+)"', recording):
        assert float(le) in bounds


def _input_series(outcomes: TaskOutcomes) -> list[dict[str, str]]:
    """The exposition of ``outcomes`` as promtool input series: 0 until the tasks arrive at
    1 m, then their counts for an hour."""
    from prometheus_client import CollectorRegistry

    from genperf.exporters.prometheus import render

    registry = CollectorRegistry(auto_describe=False)
    registry.register(outcomes)
    series = []
    text = render(registry).decode()
    for family in text_string_to_metric_families(text):
        if family.name != "genperf_task_duration_seconds":
            continue
        for s in family.samples:
            if s.name.endswith("_sum"):
                continue
            labels = {"job": "genperf", "instance": "n1", **s.labels}
            selector = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            series.append({"series": f"{s.name}{{{selector}}}", "values": f"0 {s.value:g}+0x60"})
    return series


@pytest.mark.parametrize(
    "durations",
    [
        [100, 150, 190, 250, 300],  # median 190: target met
        [100, 150, 250, 260, 900],  # median 250: over 200, within 300 (acceptable)
        [100, 350, 360, 400, 420],  # median 360: over both lines
        [199.9, 200.0, 200.1],  # median exactly on the line: within it, as genperf says
        [300.0, 300.1, 50.0],  # median 300: within acceptable exactly
    ],
)
def test_alerts_agree_with_genperfs_generation_time_verdict(tmp_path, durations):
    settings = Settings(
        performance_thresholds=PerformanceThresholds(max_generation_time_720p=200.0)
    )
    tasks = [make_task(generation_time_seconds=d, resolution="1280x720") for d in durations]
    outcomes = TaskOutcomes(duration_buckets(settings))
    for task in tasks:
        outcomes.observe(task)
    verdict = {b.name: b.status for b in evaluate_benchmarks(tasks, settings)}
    status = verdict["generation_time_720p"]
    over_target = status is BenchmarkStatus.ACCEPTABLE or status.beyond_limit
    over_acceptable = status.beyond_limit

    for name, text in rule_files(settings).items():
        doc = yaml.safe_load(text)
        for rule in doc["groups"][0]["rules"]:
            rule.pop("annotations", None)  # this test is about which alerts fire
        (tmp_path / name).write_text(yaml.safe_dump(doc))

    def expected(fires: bool, severity: str) -> list[dict[str, object]]:
        if not fires:
            return []
        labels = {"severity": severity, "kind": "generation_time", "resolution_class": "720p"}
        return [{"exp_labels": labels}]

    test = {
        "rule_files": [RECORDING_FILE, ALERTING_FILE],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": _input_series(outcomes),
                "alert_rule_test": [
                    {
                        "eval_time": "30m",
                        "alertname": "GenperfGenerationTimeOverTarget",
                        "exp_alerts": expected(over_target, "warning"),
                    },
                    {
                        "eval_time": "30m",
                        "alertname": "GenperfGenerationTimeOverAcceptable",
                        "exp_alerts": expected(over_acceptable, "critical"),
                    },
                ],
            }
        ],
    }
    (tmp_path / "agree.test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = run_tool(tool("promtool"), "test", "rules", "agree.test.yml", cwd=tmp_path)
    assert result.returncode == 0, f"verdict {status}: " + result.stdout + result.stderr


def test_the_cli_reads_the_config_file_and_refuses_a_bad_duration(tmp_path):
    config = tmp_path / "genperf.json"
    config.write_text(
        json.dumps(
            {"performance_monitoring": {"performance_thresholds": {"min_success_rate": 0.9}}}
        )
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src")}
    out = tmp_path / "rules"
    ok = subprocess.run(
        [sys.executable, "-m", "genperf", "--config", str(config), "rules", "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    text = (out / ALERTING_FILE).read_text()
    assert "job:genperf_task_success:ratio < 0.9\n" in text
    assert "(genperf.json)" in text
    bad = subprocess.run(
        [sys.executable, "-m", "genperf", "rules", "-o", str(out), "--window", "an hour"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2
    assert "--window" in bad.stderr
    assert "Prometheus duration" in bad.stderr
    assert "Traceback" not in bad.stderr
