"""Prediction on real tiny-Wan2.2 runs: the accuracy benchmark's smallest grid, one
configuration held out.

The grid runs in a subprocess (``benchmarks/prediction_accuracy.py --smallest``), as the
benchmark does, with glibc's mmap threshold fixed so each run's peak RSS is its own. Peak
memory is asserted against the aim (5 %) with a margin; generation time only within a factor
(a check that the fit follows the workload, not a wall-clock performance claim: this box's
shared cores move a run's time by tens of percent, which the benchmark reports instead).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from genperf.prediction.evaluate import holdout_accuracy

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
HELD_OUT = (128, 128, 9, 4, frozenset())


@pytest.fixture(scope="module")
def observations(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("diffusers")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import prediction_accuracy as bench
    finally:
        sys.path.pop(0)
    out = tmp_path_factory.mktemp("grid") / "runs.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "prediction_accuracy.py"),
            "--smallest",
            "--repeats",
            "2",
            "--measure-only",
            "--save",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return bench.load(out)


def test_the_held_out_configuration_is_predicted(observations):
    assert len(observations) == 32
    accuracy = holdout_accuracy(observations, held_out=[HELD_OUT])
    assert (accuracy.held_out, accuracy.unanswered) == (1, 0)
    assert accuracy.model["peak_ram_mb"].median < 0.03  # the aim is 5 %
    assert accuracy.model["generation_time_seconds"].median < 1.0


def test_every_held_out_fold_is_answered_with_peaks_under_the_aim(observations):
    accuracy = holdout_accuracy(observations, folds=4)
    assert accuracy.unanswered == 0
    assert accuracy.model["peak_ram_mb"].median < 0.03
