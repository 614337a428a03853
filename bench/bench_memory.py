"""Peak memory of ``sitrep ingest`` and ``sitrep reindex``, each run as a subprocess with the model loaded.

    .venv/bin/python bench/bench_memory.py [--data DIR] [--dev-articles N] [--synthetic-mb 200]
        [--parts dev,synthetic] [--chroma-server PORT] [--workdir DIR] [--out FILE]

Workloads:

- **dev**: the RealTime QA dev articles with text (all, or the first ``--dev-articles``), written to one JSONL
  file, ingested and re-indexed with the real MiniLM model;
- **synthetic**: a generated JSONL of ``--synthetic-mb`` megabytes of news-shaped articles
  (:class:`bench.bench_scale.SyntheticNews`), ingested and re-indexed with the model *loaded* (its ONNX
  session is built as usual) but a stand-in embedding it: the real model would take hours on this machine.

Each command runs as ``sitrep`` would (``bot.cli.main.main`` in a fresh Python process, settings from the
environment: ``SITREP_DATA_DIR`` points at a scratch folder). Memory is read two ways: the child's
``ru_maxrss`` (peak resident set of the ingest process itself) and, sampled every 50 ms from ``/proc``, the peak
of the sum over the child and its own children (the cleaning/chunking worker processes).

With ``--chroma-server PORT`` each workload's vectors go to a Chroma server started for it
(``chroma run --path DIR --port PORT`` from this venv, ``CHROMA_HOST``/``CHROMA_PORT`` set for the CLI), so the
HNSW index lives in that process: its peak RSS is reported in a column of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.markdown import publish  # noqa: E402
from bench.processes import children, memory_kb, memory_mb, start_chroma  # noqa: E402
from bench.realtimeqa import load_benchmark  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "benchmarks" / "realtimeqa-2022-dev"
_STAND_IN = "--stand-in-child"  # argv[1] of the child process that runs the CLI with a stand-in embedder


@dataclass
class Measured:
    workload: str
    command: str
    input_mb: float
    chunks: int
    wall_s: float
    peak_main_mb: float
    peak_tree_mb: float
    load: float
    server_mb: float | None = None  # the Chroma server's peak RSS so far, when one holds the vectors


def write_dev_jsonl(data: Path, path: Path, limit: int | None = None) -> int:
    """Every dev article with text (or the first ``limit``) as one JSONL record; returns how many."""
    articles = [a for a in load_benchmark([data], None).articles if a.text][:limit]
    with path.open("w", encoding="utf-8") as fh:
        for art in articles:
            fh.write(json.dumps({"text": art.text, "title": art.title, "url": art.url, "source": art.source,
                                 "published": art.published.isoformat() if art.published else None}) + "\n")
    return len(articles)


def write_synthetic_jsonl(data: Path, path: Path, megabytes: int) -> int:
    """Synthetic articles until the file holds ``megabytes`` MB; returns how many."""
    from bench.bench_scale import SyntheticNews

    news = SyntheticNews(load_benchmark([data], None).articles, seed=7)
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        while fh.tell() < megabytes * 1_000_000:
            art = news.article(n)
            fh.write(json.dumps({"id": str(n), "text": art.text, "title": art.title, "url": art.url,
                                 "source": art.source, "published": art.published.isoformat()
                                 if art.published else None}) + "\n")
            n += 1
    return n


def run_measured(args: Sequence[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Run ``args``; (wall seconds, the child's own peak RSS MB, the sampled peak of its process tree MB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            tree = [proc.pid, *children(proc.pid)]
            peak[0] = max(peak[0], sum(memory_kb(p)[0] for p in tree))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert proc.stderr is not None
    errors = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    sampler.join()
    if proc.returncode not in (0, 1):  # 1: some sources failed (articles with no text left), the rest went in
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{errors.decode()[-2000:]}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024, peak[0] / 1024


def stand_in_main(argv: Sequence[str]) -> int:
    """The CLI with MiniLM loaded as usual but a stand-in computing its vectors (random unit vectors)."""
    from bot.cli.main import main
    from retrieval.embeddings import MiniLMEmbedding

    rng = np.random.default_rng(0)

    def embed(self: MiniLMEmbedding, texts: Sequence[str]) -> np.ndarray:
        out = rng.standard_normal((len(texts), 384)).astype(np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    MiniLMEmbedding.embed = embed  # type: ignore[method-assign]
    return main(list(argv))


def measure(workload: str, jsonl: Path, store: Path, stand_in: bool, chroma_port: int | None = None
            ) -> list[Measured]:
    env = {**os.environ, "SITREP_DATA_DIR": str(store), "PYTHONPATH": str(REPO)}
    for name in ("SITREP_DATABASE_URL", "CHROMA_HOST", "CHROMA_PORT"):
        env.pop(name, None)
    server = None
    if chroma_port is not None:
        server = start_chroma(store / "chroma-server", chroma_port)
        env |= {"CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(chroma_port)}
        workload += ", Chroma server"
    cli = [sys.executable, str(Path(__file__).resolve()), _STAND_IN] if stand_in else [
        sys.executable, "-m", "bot.cli.main"]
    out = []
    try:
        for command in (["ingest", str(jsonl)], ["reindex"]):
            wall, main_mb, tree_mb = run_measured([*cli, *command], env)
            chunks = _chunks(store)
            out.append(Measured(workload, f"sitrep {command[0]}", jsonl.stat().st_size / 1e6, chunks, wall,
                                main_mb, tree_mb, os.getloadavg()[0],
                                memory_mb(server.pid)[1] if server is not None else None))
            print(render(out[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    finally:
        if server is not None:
            server.terminate()
            server.wait()
    return out


def _chunks(store: Path) -> int:
    import sqlite3

    with sqlite3.connect(store / "state.db") as conn:
        return int(conn.execute("SELECT count(*) FROM chunks").fetchone()[0])


def render(rows: Sequence[Measured]) -> str:
    lines = [
        f"Run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, {os.cpu_count()} cores shared with other jobs.",
        "",
        "| workload | command | input | chunks in store | wall | peak RSS, ingest process | "
        "peak RSS, with worker processes | peak RSS, Chroma server | load avg |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        server = f"{r.server_mb:,.0f} MB" if r.server_mb is not None else "(in the ingest process)"
        lines.append(f"| {r.workload} | `{r.command}` | {r.input_mb:,.0f} MB | {r.chunks:,} | {r.wall_s:,.0f} s "
                     f"| {r.peak_main_mb:,.0f} MB | {r.peak_tree_mb:,.0f} MB | {server} | {r.load:.1f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--dev-articles", type=int, help="only the first N dev articles (default: all)")
    ap.add_argument("--synthetic-mb", type=int, default=200, help="size of the generated JSONL")
    ap.add_argument("--parts", default="dev,synthetic", help="comma-separated: dev, synthetic")
    ap.add_argument("--chroma-server", type=int, metavar="PORT",
                    help="keep the vectors in a Chroma server started on PORT (default: embedded Chroma)")
    ap.add_argument("--workdir", type=Path, help="where to write inputs and stores (default: a temporary folder)")
    ap.add_argument("--out", type=Path, help="markdown file to write the table into (e.g. docs/benchmarks.md)")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"No benchmark data at {args.data}: pass --data DIR (RealTime QA week files).", file=sys.stderr)
        return 2
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    rows: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="sitrep-memory-", dir=args.workdir) as tmp:
        work = Path(tmp)
        if "dev" in parts:
            n = write_dev_jsonl(args.data, work / "dev.jsonl", args.dev_articles)
            rows += measure(f"{n} dev articles, real model", work / "dev.jsonl", work / "dev-store", stand_in=False,
                            chroma_port=args.chroma_server)
        if "synthetic" in parts:
            write_synthetic_jsonl(args.data, work / "synthetic.jsonl", args.synthetic_mb)
            rows += measure("synthetic, model loaded, stand-in vectors", work / "synthetic.jsonl",
                            work / "synthetic-store", stand_in=True, chroma_port=args.chroma_server)
    publish(args.out, render(rows), "bench_memory.py", argv, name="bench_memory")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == _STAND_IN:
        raise SystemExit(stand_in_main(sys.argv[2:]))
    raise SystemExit(main())
