"""Data made safe for the terminal before it is drawn.

Task fields come from clients (a ``model_type`` of ``"\\x1b[31m"``, an id with U+202E, a
name such as ``"[link=https://…]"``). Drawn raw, they would colour, reorder or hyperlink the
operator's terminal. :func:`printable` turns every control and format character into a
visible escape (``\\x1b``, ``\\u202e``) and escapes rich markup, in every string of a payload,
before the renderers see it. ``--json`` output keeps the data as it is (JSON escapes control
characters itself).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from rich.markup import escape

_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
_KEPT = frozenset("\n")  # line breaks of multi-line messages stay line breaks


def printable_text(text: str) -> str:
    """``text`` with control and format characters shown as escapes and markup escaped."""
    if text.isprintable() and "[" not in text:
        return text  # the usual case, at the cost of one scan
    out = []
    for ch in text:
        if ch in _KEPT or unicodedata.category(ch) not in _HIDDEN:
            out.append(ch)
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}")
    return escape("".join(out))


def printable(data: Any) -> Any:
    """A JSON-like payload with every string (keys too) made :func:`printable_text`."""
    if isinstance(data, str):
        return printable_text(data)
    if isinstance(data, Mapping):
        return {printable(k): printable(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [printable(v) for v in data]
    return data
