"""retrieval/heap.py: freed heap memory goes back to the system."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from retrieval import heap


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux") or heap._libc() is None, reason="needs glibc and /proc")
def test_a_trim_hands_back_memory_freed_below_a_live_allocation() -> None:
    blocks = [bytearray(4000) for _ in range(50_000)]  # ~200 MB of malloc'd blocks, each below mmap's threshold
    pin = bytearray(4000)  # allocated above them: the heap's top stays in use, so free() alone keeps them
    before = _rss_mb()
    del blocks
    heap.trim()
    assert before - _rss_mb() > 100
    del pin
