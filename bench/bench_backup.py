"""Backup and restore benchmark: `sitrep backup` and `sitrep restore` on stores of growing size.

    .venv/bin/python bench/bench_backup.py [--documents 1000 10000]

For each size, a temporary data directory gets that many one-passage articles. Their vectors are random unit
vectors (the real model would take an hour for 10,000 passages on two cores, and backup and restore never
embed: they copy vectors), stored through the normal ingest pipeline. Then ``sitrep backup`` and ``sitrep
restore`` run as their own processes, as an operator runs them; the table gives their wall time (process
start, model loading and imports included), the sizes of ``state.db``, the Chroma folder and the backup, and
checks that the restored counts match.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SITREP = str(Path(sys.executable).parent / "sitrep")


def _random_embedder() -> object:
    from retrieval.embeddings import MiniLMEmbedding

    class RandomVectors(MiniLMEmbedding):
        """MiniLM's registered name (so the real model opens the collection later), with random vectors."""

        def embed(self, texts: Sequence[str]) -> np.ndarray:
            out = np.empty((len(texts), 384), dtype=np.float32)
            for row, text in enumerate(texts):
                seed = int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "little")
                vector = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
                out[row] = vector / np.linalg.norm(vector)
            return out

    return RandomVectors()


def build_store(data: Path, documents: int) -> None:
    """``documents`` one-passage articles in ``data``, vectors random."""
    import retrieval.corpus
    from retrieval.corpus import Corpus, CorpusConfig
    from retrieval.documents import Article

    embedder = _random_embedder()
    retrieval.corpus.make_embedder = lambda *a, **k: embedder  # type: ignore[assignment]
    corpus = Corpus.open(CorpusConfig(data_dir=data))
    start = datetime(2020, 10, 1, tzinfo=UTC)
    corpus.ingest_articles(
        Article(text=f"Dispatch {i}: shelling near checkpoint {i} in Nad Ali displaced {i % 97} families, the "
                     f"district governor said on day {i}.", source_key=f"https://dispatch.test/{i}",
                url=f"https://dispatch.test/{i}", title=f"Dispatch {i}", source="Dispatch Wire",
                published=start + timedelta(minutes=i), kind="url")
        for i in range(documents))
    corpus.close()


def _size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def _timed(args: list[str], data: Path) -> tuple[float, dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SITREP_", "CHROMA_", "SLACK_", "OPENAI_"))}
    started = time.perf_counter()
    run = subprocess.run([SITREP, *args, "--json"], env={**env, "SITREP_DATA_DIR": str(data)},
                         capture_output=True, text=True, check=False)
    took = time.perf_counter() - started
    if run.returncode != 0:
        raise SystemExit(f"sitrep {' '.join(args)} failed: {run.stderr[-2000:]}")
    return took, json.loads(run.stdout)


def measure(documents: int) -> str:
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp:
        data, backup, restored = Path(tmp) / "data", Path(tmp) / "backup", Path(tmp) / "restored"
        build_store(data, documents)
        backup_s, manifest = _timed(["backup", str(backup)], data)
        restore_s, result = _timed(["restore", str(backup)], restored)
        counts = manifest["counts"]
        assert isinstance(counts, dict) and result["restored"] == counts, (counts, result)
        return (f"| {counts['chunks']:,} | {_size_mb(data / 'state.db'):.1f} | {_size_mb(data / 'chroma'):.1f} | "
                f"{_size_mb(backup):.1f} | {backup_s:.1f} | {restore_s:.1f} | "
                f"{'yes' if result['stats']['chunks'] == counts['chunks'] else 'NO'} |")  # type: ignore[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    rows = [measure(n) for n in args.documents]
    print("| passages | state.db MB | chroma MB | backup MB | backup s | restore s | counts match |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
