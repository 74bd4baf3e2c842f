"""Human-readable numbers: what people read in the CLI, the page and the analysis's evidence."""

from __future__ import annotations

import pytest

from genperf.units import count_of, human_duration, human_mib


@pytest.mark.parametrize(("n", "text"), [(0, "0 tasks"), (1, "1 task"), (2, "2 tasks")])
def test_counts_agree_with_their_noun(n, text):
    assert count_of(n, "task") == text


@pytest.mark.parametrize(("seconds", "text"), [(None, "n/a"), (0.5115, "511 ms"), (3.2, "3.2 s")])
def test_durations(seconds, text):
    assert human_duration(seconds) == text


def test_mebibytes_become_gibibytes():
    assert human_mib(2048.0).endswith("GiB")
