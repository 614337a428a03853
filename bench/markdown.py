"""Benchmark results written into a markdown file between a benchmark's own markers."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path


def write_out(path: Path, table: str, command: str, name: str) -> None:
    """Replace benchmark ``name``'s generated block in ``path`` (between markers) so hand-written notes survive."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n`{command}`\n\n{table}\n{end}"
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n"
    if start in old and end in old:
        head, rest = old.split(start, 1)
        new = head + block + rest.split(end, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new, encoding="utf-8")


def publish(out: Path | None, table: str, script: str, argv: Sequence[str] | None, name: str) -> None:
    """Print ``table`` and, with ``out``, write it into that Markdown file under the command that made it."""
    print(table)
    if out:
        shown = " ".join([f"bench/{script}", *(argv if argv is not None else sys.argv[1:])])
        write_out(out, table, f".venv/bin/python {shown}", name=name)
