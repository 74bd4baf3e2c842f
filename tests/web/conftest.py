"""Fixtures for the dashboard tests: Debian's Chromium (skipped with the reason when absent,
failed under CI), a real server over a real SQLite store, and pages that record every
request, console message and script error so each test can check none left the server or
broke a rule of the page's Content-Security-Policy."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from web_support import Service, chromium, new_page, require_browser, running_service


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    require_browser()
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The seeded service, shared by the tests of a module that only read from it."""
    require_browser()
    with running_service(tmp_path_factory.mktemp("web")) as s:
        yield s


@dataclass
class PageLog:
    """What a page did besides rendering: requests, console errors, uncaught errors."""

    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def foreign_requests(self) -> list[str]:
        return [
            u
            for u in self.requests
            if urlsplit(u).scheme not in ("data", "blob")
            and urlsplit(u).hostname not in ("127.0.0.1", "localhost")
        ]

    def unexpected_console_errors(self) -> list[str]:
        # A refused request shows as "Failed to load resource" whatever the page does with
        # it (the role probe's 403/404, a refused token's 401): those are expected here.
        return [m for m in self.console_errors if "Failed to load resource" not in m]


def _watch(page: Any) -> PageLog:
    log = PageLog()
    page.on("request", lambda r: log.requests.append(r.url))
    page.on("console", lambda m: log.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: log.page_errors.append(str(e)))
    return log


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    """``open_page(**options)``: a new page (own context, UTC, 24-hour clock), watched; at
    the end of the test, no request may have left the server and no script may have failed."""
    opened: list[tuple[Any, PageLog]] = []

    def open_(**options: Any) -> Any:
        page = new_page(browser, **options)
        page.set_default_timeout(10_000)
        log = _watch(page)
        page.genperf_log = log
        opened.append((page, log))
        return page

    yield open_
    for page, log in opened:
        page.context.close()
        assert log.page_errors == [], log.page_errors
        assert log.unexpected_console_errors() == [], log.console_errors
        assert log.foreign_requests() == [], log.foreign_requests()
