"""`sitrep ingest` in a terminal (stderr a tty, so it shows a progress bar), as people run it."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from bot.runtime import sample_corpus_path


def test_ingest_in_a_terminal_finishes(tmp_path: Path) -> None:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SITREP_", "CHROMA_", "SLACK_", "OPENAI_"))}
    controller, terminal = pty.openpty()
    try:
        run = subprocess.run([sys.executable, "-m", "bot.cli.main", "ingest", str(sample_corpus_path())],
                             env={**keep, "SITREP_DATA_DIR": str(tmp_path / "data")}, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=terminal, text=True, timeout=300)
        os.close(terminal)
        shown = b""
        while True:
            try:
                piece = os.read(controller, 65536)
            except OSError:  # the terminal is closed and drained
                break
            if not piece:
                break
            shown += piece
    finally:
        os.close(controller)
    assert run.returncode == 0, shown.decode(errors="replace")[-2000:]
    assert run.stdout.startswith("added 1,")
    assert b"Traceback" not in shown
