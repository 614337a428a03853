"""Every benchmark script starts (``--help``) from any folder: a move of the code must not leave one broken."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT

SCRIPTS = sorted(p for p in (ROOT / "bench").glob("bench_*.py"))


def test_there_are_benchmarks() -> None:
    assert len(SCRIPTS) >= 10


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_script_starts(script: object, tmp_path: object) -> None:
    run = subprocess.run([sys.executable, str(script), "--help"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=90)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "usage:" in run.stdout
