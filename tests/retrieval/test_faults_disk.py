"""A disk that fills during an ingest: the ingest fails with one clear line and the store stays consistent."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from retrieval.corpus import Corpus

# Runs the CLI with a file-size limit, the portable stand-in for a full disk: writes past the limit fail
# with EFBIG (SIGXFSZ is ignored so the process sees an error instead of being killed).
LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from bot.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def _articles(folder: Path, start: int, n: int) -> None:
    folder.mkdir(exist_ok=True)
    for i in range(start, start + n):
        (folder / f"a{i:04}.txt").write_text(
            f"Dispatch {i}: " + " ".join(f"Families in district {i} reported shelling near checkpoint {j}."
                                         for j in range(5)) + "\n"
        )


def test_disk_full_during_ingest(tmp_path: Path, corpus_factory: Callable[..., Corpus]) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "SITREP_DATA_DIR": str(data)}
    env.pop("CHROMA_HOST", None)
    first = tmp_path / "first"
    _articles(first, 0, 5)
    corpus = corpus_factory(data_dir=data)
    assert corpus.ingest([str(first)]).added == 5
    corpus.close()

    biggest = max(p.stat().st_size for p in data.rglob("*") if p.is_file())
    second = tmp_path / "second"
    _articles(second, 100, 150)
    full = subprocess.run([sys.executable, "-c", LIMITED, str(biggest + 60_000), "ingest", str(second), "--json"],
                          env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert full.returncode == 2, (full.returncode, full.stdout, full.stderr[-2000:])
    lines = [line for line in full.stderr.splitlines() if line.startswith("sitrep:")]
    assert lines and "Traceback" not in full.stderr
    assert "the disk looks full" in lines[-1].lower()
    assert "run the same ingest again" in lines[-1]

    corpus = corpus_factory(data_dir=data)
    report = corpus.ingest([str(second)])
    assert report.failed == []
    assert report.added + report.unchanged == 150
    stats = corpus.stats()
    assert stats.documents == 155
    assert corpus.store.count() == stats.chunks
