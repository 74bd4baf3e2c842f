"""Without Debian's Chromium the browser tests skip and say what to install, except under CI,
where a missing browser is a failure, not a silent skip."""

from __future__ import annotations

from pathlib import Path

import pytest
import web_support


def test_without_chromium_the_tests_skip_with_the_reason(monkeypatch):
    monkeypatch.setattr(web_support, "CHROMIUM", Path("/nonexistent/chromium"))
    monkeypatch.setattr(web_support, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match=r"apt-get install -y chromium"):
        web_support.require_browser()


def test_under_ci_a_missing_chromium_fails(monkeypatch):
    monkeypatch.setattr(web_support, "CHROMIUM", Path("/nonexistent/chromium"))
    monkeypatch.setattr(web_support, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match=r"cannot run under CI"):
        web_support.require_browser()
