"""gzip_join: a prefix compressed once and a tail compressed per scrape make one gzip member
that every decoder reads whole (Python's gzip, and httpx, which reads only a first member)."""

from __future__ import annotations

import gzip
import os

import httpx
import pytest

from genperf.exporters.gzip_join import EMPTY, accepts_gzip, deflate_prefix, gzip_join


@pytest.mark.parametrize("prefix_size", [0, 1, 70_000, 300_000])
def test_prefix_and_tail_decode_as_their_concatenation(prefix_size):
    prefix = os.urandom(prefix_size // 2).hex().encode()[:prefix_size]  # text-like and random
    tail = b'genperf_info{node="n"} 1.0\n' * 100
    body = gzip_join(deflate_prefix(prefix), tail)
    assert gzip.decompress(body) == prefix + tail
    # One member: a decoder that stops after the first member still reads everything.
    decoded = httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=body).content
    assert decoded == prefix + tail


def test_an_empty_prefix_is_the_tail_alone():
    assert gzip.decompress(gzip_join(EMPTY, b"x\n")) == b"x\n"


def test_compression_pays_on_an_exposition():
    lines = b"".join(
        f'genperf_task_duration_seconds_bucket{{le="{b}",node="gpu-{n:02d}"}} {n}.0\n'.encode()
        for n in range(64)
        for b in range(20)
    )
    assert len(gzip_join(deflate_prefix(lines), b"")) < len(lines) / 5


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("gzip, deflate", True),
        ("deflate, GZIP;q=0.5", True),
        ("x-gzip", True),
        ("gzip;q=0", False),
        ("gzip; q=0.0", False),
        ("identity", False),
        ("", False),
        (None, False),
    ],
)
def test_accept_encoding(header, expected):
    assert accepts_gzip(header) is expected
