"""analysis/ is pure: no psutil, NVML, torch, SQLAlchemy, FastAPI, Typer or rich.

Checked twice: statically (the imports of every module, read with ast, at any depth) and at
run time (importing genperf.analysis in a fresh interpreter loads none of them).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import genperf.analysis

BANNED = (
    "psutil",
    "pynvml",
    "nvidia_smi",
    "torch",
    "diffusers",
    "transformers",
    "safetensors",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "fastapi",
    "starlette",
    "typer",
    "rich",
)
# genperf modules analysis may import at module level: the data types and itself.
ALLOWED_GENPERF = (
    "genperf.analysis",
    "genperf.records",
    "genperf.config",
    "genperf.errors",
    "genperf.units",
    "genperf.numbers",
    "genperf.optimizations",
    "genperf.tally",
    "genperf.storage.base",
)

ANALYSIS = Path(genperf.analysis.__file__).parent
MODULES = sorted(ANALYSIS.glob("*.py"))


def imports(tree: ast.AST) -> list[tuple[str, bool]]:
    """(module imported, at module level?) for every import statement in the tree."""
    top = {id(node) for node in getattr(tree, "body", [])}
    out: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside genperf.analysis
                out.append(("genperf.analysis", id(node) in top))
            elif node.module == "genperf":  # from genperf import optimizations
                out += [(f"genperf.{a.name}", id(node) in top) for a in node.names]
            else:
                out.append((node.module or "", id(node) in top))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module":
            out.append(("<dynamic import>", False))
    return out


def test_every_module_is_checked() -> None:
    names = {p.name for p in MODULES}
    assert {
        "failures.py",
        "summary.py",
        "bottlenecks.py",
        "trends.py",
        "efficiency.py",
        "recommendations.py",
        "benchmarks.py",
        "report.py",
    } <= names


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_no_banned_import(path: Path) -> None:
    for module, _ in imports(ast.parse(path.read_text(), str(path))):
        root = module.split(".")[0]
        assert root not in BANNED, f"{path.name} imports {module}"
        assert module != "<dynamic import>", f"{path.name} imports by name at run time"
        if module.startswith("genperf"):
            allowed = any(module == a or module.startswith(a + ".") for a in ALLOWED_GENPERF)
            assert allowed, f"{path.name} imports {module}"


def test_importing_analysis_loads_none_of_them() -> None:
    """What ``import genperf.analysis`` adds to what ``import genperf`` loads (the package's
    __init__ brings the monitor, and so psutil, whatever is imported below it)."""
    code = (
        "import sys, json\n"
        "def roots(): return {m.split('.')[0] for m in sys.modules}\n"
        "import genperf\n"
        "before = roots()\n"
        "import genperf.analysis\n"
        "print(json.dumps(sorted(roots() - before)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    added = set(json.loads(out.stdout))
    assert not added & set(BANNED), added & set(BANNED)
    assert "sqlalchemy" not in added
