import json
import subprocess
import sys

import pytest

from genperf.config import Settings, load_settings, redact_url
from genperf.errors import ConfigError

SPEC_EXAMPLE = {
    "performance_monitoring": {
        "monitoring_interval_seconds": 5.0,
        "max_history_size": 1000,
        "enable_gpu_monitoring": True,
        "performance_thresholds": {
            "max_generation_time_720p": 300,
            "max_generation_time_1080p": 900,
            "max_vram_usage_percent": 90,
            "max_ram_usage_percent": 85,
            "min_success_rate": 0.95,
        },
    }
}


def write(tmp_path, doc, name="genperf.json"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_defaults_are_the_specs():
    s = Settings()
    assert s.monitoring_interval_seconds == 5.0
    assert s.max_history_size == 1000
    assert s.enable_gpu_monitoring is True
    t = s.performance_thresholds
    assert (t.max_generation_time_720p, t.max_generation_time_1080p) == (300, 900)
    assert (t.max_vram_usage_percent, t.max_ram_usage_percent, t.min_success_rate) == (90, 85, 0.95)
    b = s.benchmark_targets
    assert b.generation_time_acceptable_factor == 1.5
    assert (
        b.vram_usage_percent.optimal,
        b.vram_usage_percent.acceptable,
        b.vram_usage_percent.maximum,
    ) == (70, 85, 90)  # the maximum is max_vram_usage_percent
    assert (
        b.ram_usage_percent.optimal,
        b.ram_usage_percent.acceptable,
        b.ram_usage_percent.maximum,
    ) == (60, 75, 85)  # the maximum is max_ram_usage_percent
    assert (
        b.cpu_usage_percent.optimal,
        b.cpu_usage_percent.acceptable,
        b.cpu_usage_percent.maximum,
    ) == (70, 85, 95)
    assert (b.success_rate.target, b.success_rate.acceptable, b.success_rate.minimum) == (
        0.98,
        0.95,
        0.95,  # the minimum is min_success_rate
    )
    assert (
        b.resource_efficiency.target,
        b.resource_efficiency.acceptable,
        b.resource_efficiency.minimum,
    ) == (0.85, 0.70, 0.50)


def test_the_specs_example_file_loads(tmp_path):
    s = load_settings(write(tmp_path, SPEC_EXAMPLE), environ={})
    assert s == Settings(data_dir=s.data_dir)


def test_file_values_are_used_and_env_overrides_them(tmp_path):
    doc = {
        "performance_monitoring": {
            "monitoring_interval_seconds": 2.0,
            "performance_thresholds": {"max_generation_time_480p": 120},
        }
    }
    path = write(tmp_path, doc)
    s = load_settings(
        path,
        environ={
            "GENPERF_MONITORING_INTERVAL_SECONDS": "0.5",
            "GENPERF_PERFORMANCE_THRESHOLDS__MAX_VRAM_USAGE_PERCENT": "80",
            "GENPERF_DATABASE_URL": "postgresql://u:secret@db/x",
            "GENPERF_URL": "http://not-a-setting",
        },
    )
    assert s.monitoring_interval_seconds == 0.5
    assert s.performance_thresholds.max_vram_usage_percent == 80
    assert s.performance_thresholds.max_generation_time("480p") == 120
    assert s.performance_thresholds.max_generation_time("720p") == 300
    assert s.database_url == "postgresql://u:secret@db/x"


def test_config_file_from_environment(tmp_path):
    path = write(tmp_path, {"performance_monitoring": {"max_history_size": 7}})
    assert load_settings(environ={"GENPERF_CONFIG": str(path)}).max_history_size == 7


def test_default_database_is_sqlite_in_the_data_dir(tmp_path):
    s = load_settings(environ={"GENPERF_DATA_DIR": str(tmp_path)})
    assert s.resolved_database_url == f"sqlite:///{tmp_path}/genperf.db"


@pytest.mark.parametrize(
    ("doc", "key", "fragment"),
    [
        (
            {"monitoring_interval_seconds": -1},
            "performance_monitoring.monitoring_interval_seconds",
            "greater than 0",
        ),
        (
            {"performance_thresholds": {"max_vram_usage_percent": 150}},
            "performance_monitoring.performance_thresholds.max_vram_usage_percent",
            "less than or equal to 100",
        ),
        (
            {"monitoring_intervall_seconds": 5},
            "performance_monitoring.monitoring_intervall_seconds",
            "unknown key",
        ),
        (
            {"performance_thresholds": {"max_vram_percent": 80}},
            "performance_monitoring.performance_thresholds",
            "unknown key 'max_vram_percent'",
        ),
        ({"max_history_size": "lots"}, "performance_monitoring.max_history_size", "integer"),
        (
            {
                "benchmark_targets": {
                    "vram_usage_percent": {"optimal": 90, "acceptable": 80, "maximum": 95}
                }
            },
            "performance_monitoring.benchmark_targets.vram_usage_percent",
            "optimal <= acceptable",
        ),
        (
            {
                "benchmark_targets": {
                    "success_rate": {"target": 0.9, "acceptable": 0.95, "minimum": 0.8}
                }
            },
            "performance_monitoring.benchmark_targets.success_rate",
            "target >= acceptable >= minimum",
        ),
    ],
)
def test_bad_values_name_the_key_and_the_file(tmp_path, doc, key, fragment):
    path = write(tmp_path, {"performance_monitoring": doc})
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    message = str(err.value)
    assert key in message
    assert str(path) in message
    assert fragment in message


def test_bad_env_value_names_the_variable():
    with pytest.raises(ConfigError, match="GENPERF_MONITORING_INTERVAL_SECONDS"):
        load_settings(environ={"GENPERF_MONITORING_INTERVAL_SECONDS": "-3"})


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"other": {}}'])
def test_a_file_that_is_not_the_specs_json_is_refused(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=str(path)):
        load_settings(path, environ={})


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.json", environ={})


def test_redact_url_masks_the_password():
    assert redact_url("postgresql+psycopg://bob:s3cr%40t@h:5432/db") == (
        "postgresql+psycopg://bob:***@h:5432/db"
    )
    assert redact_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_cli_reports_a_bad_config_in_one_line_without_traceback(tmp_path):
    path = write(tmp_path, {"performance_monitoring": {"monitoring_interval_seconds": -1}})
    proc = subprocess.run(
        [sys.executable, "-m", "genperf", "--config", str(path), "status"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "monitoring_interval_seconds" in lines[0] and str(path) in lines[0]


def test_api_keys_load_from_the_file_and_tokens_never_show(tmp_path):
    path = write(
        tmp_path,
        {
            "performance_monitoring": {
                "api_tokens": ["admin:s3cret-token"],
                "allowed_hosts": ["genperf.lan"],
            }
        },
    )
    s = load_settings(path, environ={"GENPERF_ALLOWED_HOSTS": "a,b"})  # the API reads that one
    assert s.api_tokens == ["admin:s3cret-token"]
    assert s.allowed_hosts == ["genperf.lan"]
    assert "s3cret" not in repr(s)
    assert "s3cret" not in json.dumps(s.safe_dict())


def test_variables_that_name_no_setting_are_not_read():
    """pydantic-settings reads only the settings' own names: no list of other tools' (or
    tests') variables is needed."""
    env = {
        "GENPERF_URL": "http://elsewhere:8000",
        "GENPERF_TOKEN": "t",
        "GENPERF_TEST_PG_URL": "postgresql://x",
        "GENPERF_NOT_A_SETTING": "{oops",
        "GENPERF_NODE_NAME": "n1",
    }
    assert load_settings(environ=env).node_name == "n1"


def test_nested_variables_and_errors_that_name_them():
    name = "GENPERF_BENCHMARK_TARGETS__GENERATION_TIME_ACCEPTABLE_FACTOR"
    assert (
        load_settings(environ={name: "2"}).benchmark_targets.generation_time_acceptable_factor == 2
    )
    band = '{"optimal": 50, "acceptable": 60, "maximum": 70}'
    loaded = load_settings(environ={"GENPERF_BENCHMARK_TARGETS__RAM_USAGE_PERCENT": band})
    assert loaded.benchmark_targets.ram_usage_percent.maximum == 70
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={name: "0.5"})
    line = str(caught.value)
    assert "\n" not in line
    assert "benchmark_targets.generation_time_acceptable_factor" in line
    assert f"environment variable {name}" in line
