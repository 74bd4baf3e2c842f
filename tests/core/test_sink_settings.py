"""The live sinks' settings: defaults (all off), validation naming the key, environment
variables read as text, and credentials never shown."""

from __future__ import annotations

import pytest

from genperf.config import Settings, load_settings
from genperf.errors import ConfigError
from genperf.sinks import build_sinks


def test_every_sink_is_off_by_default():
    settings = Settings()
    assert settings.influxdb_url is None
    assert settings.elasticsearch_url is None
    assert settings.otlp_endpoint is None
    assert settings.task_log is None
    assert build_sinks(settings, node="n") == []
    assert (settings.sink_batch_size, settings.sink_queue_size) == (1000, 10_000)


@pytest.mark.parametrize(
    ("name", "value", "key"),
    [
        ("GENPERF_INFLUXDB_URL", "127.0.0.1:8086", "influxdb_url"),
        ("GENPERF_INFLUXDB_URL", "ftp://host/x", "influxdb_url"),
        ("GENPERF_INFLUXDB_DATABASE", "bad db;", "influxdb_database"),
        ("GENPERF_ELASTICSEARCH_INDEX", "Upper", "elasticsearch_index"),
        ("GENPERF_OTLP_ENDPOINT", "http://", "otlp_endpoint"),
        ("GENPERF_SINK_QUEUE_SIZE", "0", "sink_queue_size"),
        ("GENPERF_SINK_BATCH_SIZE", "many", "sink_batch_size"),
        ("GENPERF_SINK_RETRY_MAX_SECONDS", "-1", "sink_retry_max_seconds"),
        ("GENPERF_TASK_LOG", "", "task_log"),
    ],
)
def test_a_bad_sink_setting_names_its_key_and_variable(name, value, key):
    with pytest.raises(ConfigError) as err:
        load_settings(environ={name: value})
    assert f"performance_monitoring.{key}" in str(err.value)
    assert name in str(err.value)


def test_urls_and_names_from_the_environment_stay_text():
    settings = load_settings(
        environ={
            "GENPERF_INFLUXDB_URL": "http://writer:s3cret@influx:8086",
            "GENPERF_INFLUXDB_DATABASE": "1234",
            "GENPERF_ELASTICSEARCH_INDEX": "2026",
            "GENPERF_TASK_LOG": "stdout",
            "GENPERF_SINK_FLUSH_SECONDS": "0.5",
        }
    )
    assert (settings.influxdb_database, settings.elasticsearch_index) == ("1234", "2026")
    assert settings.task_log == "stdout"
    assert settings.sink_flush_seconds == 0.5
    shown = settings.safe_dict()
    assert shown["influxdb_url"] == "http://writer:***@influx:8086"
    assert "s3cret" not in repr(settings)
