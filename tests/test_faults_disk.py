"""A disk that fills during an ingest: the ingest fails with one clear line and the store stays consistent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from retrieval.corpus import Corpus, CorpusConfig

# Runs the CLI with a file-size limit, the portable stand-in for a full disk: writes past the limit fail
# with EFBIG (SIGXFSZ is ignored so the process sees an error instead of being killed).
LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from bot.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _articles(folder: Path, start: int, n: int) -> None:
    folder.mkdir(exist_ok=True)
    for i in range(start, start + n):
        (folder / f"a{i:04}.txt").write_text(
            f"Dispatch {i}: " + " ".join(f"Families in district {i} reported shelling near checkpoint {j}."
                                         for j in range(12)) + "\n"
        )


def test_disk_full_during_ingest(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "SITREP_DATA_DIR": str(data)}
    env.pop("CHROMA_HOST", None)
    first = tmp_path / "first"
    _articles(first, 0, 5)
    ok = subprocess.run([sys.executable, "-m", "bot.cli", "ingest", str(first), "--json"],
                        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr

    biggest = max(p.stat().st_size for p in data.rglob("*") if p.is_file())
    second = tmp_path / "second"
    _articles(second, 100, 400)
    full = subprocess.run([sys.executable, "-c", LIMITED, str(biggest + 200_000), "ingest", str(second), "--json"],
                          env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert full.returncode == 2, (full.returncode, full.stdout, full.stderr[-2000:])
    lines = [line for line in full.stderr.splitlines() if line.startswith("sitrep:")]
    assert lines and "Traceback" not in full.stderr
    assert "the disk looks full" in lines[-1].lower()
    assert "run the same ingest again" in lines[-1]

    again = subprocess.run([sys.executable, "-m", "bot.cli", "ingest", str(second), "--json"],
                           env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    report = json.loads(again.stdout)
    assert report["added"] + report["unchanged"] == 400

    corpus = Corpus.open(CorpusConfig(data_dir=data))
    try:
        stats = corpus.stats()
        assert stats.documents == 405
        assert corpus.store.count() == stats.chunks
    finally:
        corpus.close()
