"""How a long run (ingest, reindex, eval) reports itself: a live bar on a terminal, short notes, or nothing.

The bar goes to stderr so stdout stays the command's result (and ``--json`` stays parseable); it is shown
only when that stream is a terminal, where tqdm can redraw a line. Notes ("waiting for another ingest to
finish…") are one line each and go out whenever a stream is given.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

Advance = Callable[[int], object]


@dataclass(frozen=True)
class Progress:
    """Where progress goes: ``stream`` for notes (None: nowhere), ``bars`` to draw live bars on it."""

    stream: TextIO | None = None
    bars: bool = False

    @classmethod
    def for_terminal(cls, stream: TextIO | None = None, *, quiet: bool = False) -> Progress:
        """Notes on ``stream`` (default stderr); bars too when it is a terminal and not ``quiet``."""
        stream = stream if stream is not None else sys.stderr
        return cls(stream, bars=not quiet and is_terminal(stream))

    def note(self, message: str) -> None:
        """One line of news about the run."""
        if self.stream is not None:
            self.stream.write(f"{message}\n")
            self.stream.flush()

    @contextmanager
    def bar(self, desc: str, unit: str, total: int | None = None) -> Iterator[Advance]:
        """A bar while the block runs; yields ``advance(n)`` to call as work gets done.

        ``total`` None (a stream of unknown length) shows a running count and rate instead of a bar.
        """
        if not self.bars or self.stream is None:
            yield _ignore
            return
        from tqdm import tqdm

        bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, leave=False, dynamic_ncols=True,
                   mininterval=0.2)
        try:
            yield bar.update
        finally:
            bar.close()


    @contextmanager
    def working(self, desc: str) -> Iterator[None]:
        """A line saying ``desc…`` and the seconds spent, redrawn until the block ends, then erased (for a
        long step that has no count to show, such as waiting for the language model)."""
        if not self.bars or self.stream is None:
            yield
            return
        stream, done, started = self.stream, threading.Event(), time.monotonic()

        def tick() -> None:
            while not done.wait(0.5):
                stream.write(f"\r{desc}… {time.monotonic() - started:.0f}s")
                stream.flush()

        ticker = threading.Thread(target=tick, name="progress", daemon=True)
        ticker.start()
        try:
            yield
        finally:
            done.set()
            ticker.join()
            stream.write("\r\x1b[K")  # erase the line
            stream.flush()


SILENT = Progress()


def as_progress(value: Progress | bool) -> Progress:
    """``True`` (the older flag) means bars and notes on stderr when it is a terminal; ``False`` means silent."""
    if isinstance(value, Progress):
        return value
    return Progress.for_terminal() if value else SILENT


def _ignore(_n: int = 1) -> None:
    return None


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal (False for closed streams and file-likes without a descriptor)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        return False
