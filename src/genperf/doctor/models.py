"""Model directories checked without loading a weight: model_index.json, each component's
config, every safetensors file's header (and that its size matches it), shard indexes.

A safetensors file is an 8-byte little-endian header length, a JSON header naming each
tensor's byte range, then the data: a file shorter (or longer) than the header's last byte
is truncated or corrupt, whatever its name.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from genperf.doctor.core import Check, Verdict

V = Verdict
MODEL_INDEX = "model_index.json"
MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit on the JSON header
_CONFIGS = (
    "config.json",
    "scheduler_config.json",
    "tokenizer_config.json",
    "preprocessor_config.json",
)
FIX = (
    "Download the model again (huggingface-cli download <repo> --local-dir <dir>) or copy it "
    "whole from a good source; keep each component's config with weights of the same revision."
)


def find_model_dirs(*roots: Path | None) -> list[Path]:
    """Each root that is a model directory, and each child of a root that is one."""
    out: list[Path] = []
    for root in roots:
        if root is None or not root.is_dir():
            continue
        if (root / MODEL_INDEX).is_file():
            out.append(root)
            continue
        out.extend(sorted(p for p in root.iterdir() if (p / MODEL_INDEX).is_file()))
    return list(dict.fromkeys(out))


def safetensors_problem(path: Path) -> tuple[str | None, int]:
    """(what is wrong, or None; bytes of tensor data the header promises)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return f"{path.name}: {size} bytes, too short for a safetensors header", 0
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES or 8 + n > size:
            return f"{path.name}: header of {n} bytes does not fit in the file ({size} bytes)", 0
        try:
            header: dict[str, Any] = json.loads(f.read(n))
        except (ValueError, UnicodeDecodeError) as exc:
            return f"{path.name}: unreadable header ({exc})", 0
    end = 0
    for key, info in header.items():
        if key == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2):
            return f"{path.name}: tensor {key!r} has no data_offsets", 0
        end = max(end, int(offsets[1]))
    expected = 8 + n + end
    if size != expected:
        state = "truncated" if size < expected else "longer than its header says"
        return f"{path.name}: {state} ({size} bytes, header says {expected})", end
    return None, end


def _component(root: Path, name: str, problems: list[str]) -> int:
    """Check one component folder; returns the bytes of weights it holds."""
    folder = root / name
    if not folder.is_dir():
        problems.append(f"{name}/ is missing")
        return 0
    configs = [c for c in _CONFIGS if (folder / c).is_file()]
    weights = sorted(folder.glob("*.safetensors"))
    has_files = any(folder.iterdir())
    if not configs and not has_files:
        problems.append(f"{name}/ is empty")
        return 0
    for c in configs:
        try:
            json.loads((folder / c).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(f"{name}/{c} is not valid JSON ({exc})")
    if "config.json" in configs and not weights and not list(folder.glob("*.bin")):
        problems.append(f"{name}/ has a config.json and no weights")
    total = 0
    for index in folder.glob("*.safetensors.index.json"):
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            problems.append(f"{name}/{index.name} is unreadable ({exc})")
            continue
        problems.extend(
            f"{name}/{s} (listed in {index.name}) is missing"
            for s in sorted(shards)
            if not (folder / s).is_file()
        )
    for w in weights:
        problem, data_bytes = safetensors_problem(w)
        if problem:
            problems.append(f"{name}/{problem}")
        elif data_bytes == 0:
            problems.append(f"{name}/{w.name} holds no tensor data")
        total += data_bytes
    return total


def model_check(root: Path, name: str | None = None) -> Check:
    """One model directory: every component model_index.json names, without loading it."""
    label = name or root.name
    check_name, title = f"model:{label}", f"Model directory {label}"
    index_path = root / MODEL_INDEX
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        if not isinstance(index, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        return Check(
            check_name,
            title,
            V.FAILURE,
            f"{index_path}: unreadable ({exc})",
            FIX,
            {"path": str(root)},
        )
    components = sorted(
        k
        for k, v in index.items()
        if not k.startswith("_") and isinstance(v, list) and len(v) == 2 and v[0] is not None
    )
    problems: list[str] = []
    weight_bytes = sum(_component(root, c, problems) for c in components)
    data = {
        "path": str(root),
        "pipeline": index.get("_class_name"),
        "components": components,
        "weight_bytes": weight_bytes,
        "problems": problems,
    }
    if problems:
        return Check(
            check_name, title, V.FAILURE, f"{root}: " + "; ".join(problems[:10]), FIX, data
        )
    return Check(
        check_name,
        title,
        V.OK,
        f"{root}: {index.get('_class_name', '?')}, {len(components)} components "
        f"({', '.join(components)}), {weight_bytes / 2**20:.1f} MiB of weights with readable "
        "headers and matching sizes",
        data=data,
    )


def model_checks(dirs: list[Path]) -> Iterator[Check]:
    if not dirs:
        yield Check(
            "models",
            "Model directories",
            V.NOT_AVAILABLE,
            "no model directory found (data_dir/models, model_dir)",
            "Set model_dir (GENPERF_MODEL_DIR) to where the diffusers folders are.",
        )
        return
    for d in dirs:
        yield model_check(d)
