"""Limits and identity used when loading sources."""

from __future__ import annotations

from dataclasses import dataclass

from retrieval.fetchguard import NOTHING_ALLOWED, FetchAllow

DEFAULT_USER_AGENT = "sitrep/0.1 (+https://github.com/sitrep; newsroom research bot)"


@dataclass(frozen=True)
class FetchOptions:
    """How far sitrep goes to load one source.

    ``timeout`` bounds each network operation and the whole download of one URL, in seconds;
    ``max_bytes`` caps a fetched body (read in a stream, stopped at the cap); ``max_file_bytes``
    caps a local file, checked before reading it. ``allow`` lists the non-public hosts and networks
    fetches may reach (``SITREP_FETCH_ALLOW``); every other private or local address is refused.
    """

    timeout: float = 15.0
    max_bytes: int = 10 * 1024 * 1024
    max_file_bytes: int = 50 * 1024 * 1024
    user_agent: str = DEFAULT_USER_AGENT
    allow: FetchAllow = NOTHING_ALLOWED


DEFAULT_OPTIONS = FetchOptions()


def format_size(n_bytes: int) -> str:
    """A byte count as a short human-readable size, e.g. ``10 MB`` or ``1.5 KB``."""
    size = float(n_bytes)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.3g} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
