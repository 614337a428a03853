"""bench/bench_memory.py: runs the CLI in a child process and reads its peak memory."""

from __future__ import annotations

import sys
from pathlib import Path

from bench import bench_memory

from conftest import FIXTURES


def test_a_child_process_peak_memory_is_measured(tmp_path: Path) -> None:
    wall, own_mb, tree_mb = bench_memory.run_measured(
        [sys.executable, "-c", "import time; block = bytearray(80 * 2**20); block[::4096] = b'x' * len(block[::4096]);"
                               " time.sleep(0.3)"], {})
    assert wall > 0.25 and own_mb >= 80 and tree_mb >= 80


def test_the_dev_articles_become_one_jsonl_record_each(tmp_path: Path) -> None:
    path = tmp_path / "dev.jsonl"
    n = bench_memory.write_dev_jsonl(FIXTURES / "realtimeqa", path)
    assert n > 0 and len(path.read_text(encoding="utf-8").splitlines()) == n


def test_ingest_and_reindex_of_a_synthetic_file_are_measured_with_the_stand_in(tmp_path: Path) -> None:
    path = tmp_path / "synthetic.jsonl"
    n = bench_memory.write_synthetic_jsonl(FIXTURES / "realtimeqa", path, megabytes=1)
    assert path.stat().st_size >= 1_000_000 and len(path.read_text(encoding="utf-8").splitlines()) == n
    rows = bench_memory.measure("synthetic", path, tmp_path / "store", stand_in=True)
    assert [r.command for r in rows] == ["sitrep ingest", "sitrep reindex"]
    assert rows[0].chunks == rows[1].chunks > n and all(r.peak_main_mb > 100 for r in rows)
    assert "| synthetic | `sitrep ingest` |" in bench_memory.render(rows)


def test_a_chroma_servers_peak_memory_gets_its_own_column() -> None:
    rows = [bench_memory.Measured("w", "sitrep ingest", 1.0, 10, 1.0, 300.0, 320.0, 2.0, server_mb=250.0),
            bench_memory.Measured("w", "sitrep reindex", 1.0, 10, 1.0, 300.0, 320.0, 2.0)]
    lines = bench_memory.render(rows).splitlines()
    assert lines[-2].endswith("| 300 MB | 320 MB | 250 MB | 2.0 |")
    assert "| (in the ingest process) |" in lines[-1]
