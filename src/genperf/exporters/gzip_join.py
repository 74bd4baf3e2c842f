"""One gzip member from a compressed-once prefix and a small tail compressed per request.

A scrape's body is mostly the task families, which change at most once a second, and a small
live part read at scrape time. Compressing the whole body per scrape would cost milliseconds;
compressing the prefix once per change and only the tail per scrape costs microseconds. The
prefix is a raw DEFLATE stream ended with a full flush (byte-aligned, no final block, no
reference into it from later blocks), so the tail's own DEFLATE stream continues it as one
valid stream, and the gzip trailer's CRC-32 extends the prefix's over the tail. One member,
not two concatenated: some clients (httpx) read only a gzip body's first member.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

LEVEL = 1  # Prometheus text compresses about 10x even at the fastest level
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # gzip, deflate, no name or time, unknown OS


@dataclass(frozen=True, slots=True)
class DeflatedPrefix:
    """``data`` compressed once: its raw DEFLATE blocks, CRC-32 and length."""

    raw: bytes
    crc: int
    size: int


EMPTY = DeflatedPrefix(b"", 0, 0)


def deflate_prefix(data: bytes, level: int = LEVEL) -> DeflatedPrefix:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    raw = compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)
    return DeflatedPrefix(raw, zlib.crc32(data), len(data))


def gzip_join(prefix: DeflatedPrefix, tail: bytes, level: int = LEVEL) -> bytes:
    """The gzip member whose content is the prefix's data followed by ``tail``."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = compressor.compress(tail) + compressor.flush(zlib.Z_FINISH)
    crc = zlib.crc32(tail, prefix.crc)
    size = (prefix.size + len(tail)) & 0xFFFFFFFF
    return _HEADER + prefix.raw + body + struct.pack("<II", crc, size)


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` header accepts gzip (``gzip;q=0`` refuses it)."""
    for item in (accept_encoding or "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip"):
            q = params.strip().lower().removeprefix("q=")
            return not (params and _is_zero(q))
    return False


def _is_zero(q: str) -> bool:
    try:
        return float(q) == 0.0
    except ValueError:
        return False


__all__ = ["EMPTY", "DeflatedPrefix", "accepts_gzip", "deflate_prefix", "gzip_join"]
