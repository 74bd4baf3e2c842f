"""The layers of docs/design.md, kept by import-linter: the contracts in pyproject.toml
([tool.importlinter]) are checked over the installed sources on every test run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import genperf

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


@pytest.mark.skipif(
    not LINT_IMPORTS.exists() and os.environ.get("CI") != "true",
    reason="import-linter is not installed (pip install -e .[dev])",
)
def test_the_layer_contracts_are_kept() -> None:
    # The sources analysed are those this test imports (PYTHONPATH first, as in the suite).
    src = str(Path(genperf.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [str(LINT_IMPORTS), str(ROOT / "pyproject.toml"), "--no-cache"],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
