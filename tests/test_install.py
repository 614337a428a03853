"""``pip install -e .`` and ``pip install .`` in a fresh venv with the pip ``python3 -m venv`` ships, as a user does.

Older pips resolve dependencies differently (pip 23.2 skipped lxml's html-clean extra, and sitrep then failed
at import), so the stock pip is used, never upgraded. A copy of the project is installed, so the checkout is
left as it was.

The stock pip first downloads every dependency (``pip download``, the same resolution an install makes) into
a wheelhouse kept in ``.venv/install-check/`` for this pyproject.toml; the installs then resolve again from
those files offline. PyPI's answers are not cached by pip here, and downloading ~300 MB for every run of the
suite would take minutes. A changed pyproject.toml gets a fresh wheelhouse.
"""

from __future__ import annotations

import ensurepip
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_PAGE = ROOT / "tests" / "fixtures" / "loaders" / "mixed" / "lashkargah-displaced.html"
_NOT_SOURCE = shutil.ignore_patterns(".venv", ".git", "sitrep-data", "__pycache__", "build", "*.egg-info",
                                     ".pytest_cache", ".ruff_cache", "bench-data", "results")


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _check_installed(venv: Path, work: Path, env: dict[str, str], expect_under: Path) -> None:
    """sitrep runs from the venv: it imports from ``expect_under`` and ingests a web page (trafilatura, lxml's
    HTML cleaner, the packaged model files, Chroma), from a folder outside the project."""
    python = str(venv / "bin" / "python")
    where = _run([python, "-c", "import bot, retrieval; print(bot.__file__); print(retrieval.__file__)"], work, env)
    assert all(Path(line).resolve().is_relative_to(expect_under.resolve()) for line in where.split()), where
    assert "ingest" in _run([str(venv / "bin" / "sitrep"), "--help"], work, env)
    out = _run([str(venv / "bin" / "sitrep"), "ingest", str(FIXTURE_PAGE), "--json"], work,
               {**env, "SITREP_DATA_DIR": str(work / f"data-{expect_under.name}")})
    assert json.loads(out)["added"] == 1


def _wheelhouse(pip: list[str], project: Path, work: Path, env: dict[str, str], scratch: Path) -> Path:
    """Every wheel the project needs, with its build backend, as the stock pip resolves them; kept per
    pyproject.toml in the project's .venv (or in ``scratch`` without one)."""
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    keep = ROOT / ".venv"
    house = (keep if keep.is_dir() else scratch) / "install-check" / digest
    done = house / ".complete"
    if not done.exists():
        shutil.rmtree(house, ignore_errors=True)
        _run([*pip, "download", "--quiet", "--dest", str(house), str(project), "setuptools>=68", "wheel"], work, env)
        done.touch()
    return house


@pytest.mark.install
@pytest.mark.timeout(1800)
def test_install_with_the_pip_venv_ships(tmp_path: Path) -> None:
    project = tmp_path / "sitrep"
    shutil.copytree(ROOT, project, ignore=_NOT_SOURCE)
    work = tmp_path / "elsewhere"
    work.mkdir()
    venv = tmp_path / "venv"
    base_python = os.path.join(sys.base_prefix, "bin", "python3")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_NO_CACHE", "VIRTUAL_ENV", "PYTHON"))}
    _run([base_python, "-m", "venv", str(venv)], work, env)
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    assert _run([*pip, "--version"], work, env).split()[1] == ensurepip.version()  # the stock pip, not upgraded

    offline = ["--no-index", "--find-links", str(_wheelhouse(pip, project, work, env, tmp_path))]
    _run([*pip, "install", "--quiet", *offline, "-e", str(project)], work, env)
    _check_installed(venv, work, env, expect_under=project)

    _run([*pip, "install", "--quiet", *offline, str(project)], work, env)
    site = Path(_run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     work, env).strip())
    _check_installed(venv, work, env, expect_under=site)
