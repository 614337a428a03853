"""The process heap (glibc malloc): freed memory handed back to the system.

Building the ONNX session leaves its scratch freed in the heap, which glibc keeps resident unless asked to return
it. Elsewhere than glibc :func:`trim` does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


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
