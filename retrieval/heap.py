"""The process heap (glibc malloc): freed memory handed back to the system.

Building the ONNX session leaves its scratch freed in the heap, which glibc keeps resident unless asked to return
it. Chroma's threads allocate each shard's index in glibc's per-thread arenas (up to 8 per core); once the
shard is released its pages stay resident as fragments scattered over those arenas, ~15 MB per 10,000 vectors
released, so a long ingest grew without bound. With at most two arenas they are reused instead. Elsewhere than
glibc these functions do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

_M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")  # runs ldconfig: once per process
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def trim() -> None:
    """Return the heap's free memory to the system."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def limit_arenas(arenas: int) -> None:
    """Let glibc's malloc use at most ``arenas`` arenas from now on (for a long-running writing process)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(_M_ARENA_MAX, arenas)
