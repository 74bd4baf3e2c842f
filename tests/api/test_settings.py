"""The API's settings from the environment (and from Settings once it carries them)."""

from __future__ import annotations

import pytest

from genperf.api.settings import ApiSettings
from genperf.config import Settings
from genperf.errors import ConfigError


def test_environment_lists_are_comma_separated_or_json(tmp_path):
    settings = Settings(data_dir=tmp_path)
    api = ApiSettings.load(
        settings,
        {
            "GENPERF_API_TOKENS": "read:abc, admin:xyz ,",
            "GENPERF_ALLOWED_HOSTS": '["genperf.internal", "10.0.0.5"]',
            "GENPERF_CORS_ORIGINS": "https://grafana.example",
        },
    )
    assert api.api_tokens == ("read:abc", "admin:xyz")
    assert api.allowed_hosts == ("genperf.internal", "10.0.0.5")
    assert api.cors_origins == ("https://grafana.example",)


def test_defaults_are_closed(tmp_path):
    api = ApiSettings.load(Settings(data_dir=tmp_path), {})
    assert api.api_tokens == () and api.allowed_hosts == () and api.cors_origins == ()
    assert api.max_body_bytes == 1024 * 1024


def test_tokens_never_show_in_repr_or_errors(tmp_path):
    api = ApiSettings(api_tokens=("admin:very-secret-token",))
    assert "very-secret-token" not in repr(api)
    with pytest.raises(ConfigError) as info:
        ApiSettings.load(Settings(data_dir=tmp_path), {"GENPERF_API_TOKENS": '["x", 1]'})
    assert "GENPERF_API_TOKENS" in str(info.value)
    with pytest.raises(ConfigError) as info:
        ApiSettings.load(
            Settings(data_dir=tmp_path), {"GENPERF_API_TOKENS": '["admin:very-secret-token"'}
        )
    assert "very-secret-token" not in str(info.value)


def test_load_settings_leaves_the_api_variables_alone(tmp_path):
    from genperf.config import load_settings

    load_settings(
        environ={
            "GENPERF_DATA_DIR": str(tmp_path),
            "GENPERF_API_TOKENS": "read:abc",
            "GENPERF_ALLOWED_HOSTS": "a,b",
            "GENPERF_CORS_ORIGINS": "https://x",
        }
    )
