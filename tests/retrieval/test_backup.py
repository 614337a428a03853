"""`sitrep backup` taken while an ingest is in flight, restored into an empty folder and searched; restore's
refusals; and backups to places that cannot hold them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.cli.main import main
from retrieval.backup import FORMAT_VERSION, MANIFEST
from retrieval.corpus import Corpus
from retrieval.documents import Article
from retrieval.ingest import FIRST_BATCH_CHUNKS
from retrieval.removal import RemovalRequest
from retrieval.state import StateDB

from conftest import ROOT, fixture_articles


def _env(data: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SITREP_", "OPENAI_", "CHROMA_"))}
    return {**keep, "SITREP_DATA_DIR": str(data), "PYTHONPATH": str(ROOT)}


def sitrep(data: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real CLI in its own process, as an operator runs it next to a running bot."""
    return subprocess.run([sys.executable, "-m", "bot.cli.main", *args], env=_env(data), cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def dispatches(n: int, start: int = 0) -> list[Article]:
    """Short dated reports, one passage each."""
    day = datetime(2020, 10, 1, tzinfo=UTC)
    return [Article(text=f"Dispatch {i}: shelling near checkpoint {i} in Nad Ali district displaced {i * 3} "
                         f"families, the district governor said on day {i}.",
                    source_key=f"https://dispatch.test/{i}", url=f"https://dispatch.test/{i}",
                    title=f"Dispatch {i} from Nad Ali", source="Dispatch Wire",
                    published=day + timedelta(hours=i), kind="url")
            for i in range(start, start + n)]


def test_backup_during_an_ingest_restores_into_an_empty_folder(
    tmp_path: Path, corpus_factory: Callable[..., Corpus], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "data"
    corpus = corpus_factory(data_dir=data, articles=fixture_articles())
    corpus.remove(RemovalRequest(targets=["https://example-news.test/stoltenberg"]))  # a tombstone to carry

    # The ingest commits its first batch, writes the vectors of its second, and stops before that commit.
    commit = StateDB.commit_batch
    paused, resume = threading.Event(), threading.Event()

    def gated(self: StateDB, *args: Any, **kwargs: Any) -> list[str]:
        if paused.is_set() or len(args[0]) < FIRST_BATCH_CHUNKS:
            paused.set()
            assert resume.wait(240)
        return commit(self, *args, **kwargs)

    monkeypatch.setattr(StateDB, "commit_batch", gated)
    ingest = threading.Thread(target=corpus.ingest_articles, args=(dispatches(FIRST_BATCH_CHUNKS + 12),))
    ingest.start()
    try:
        assert paused.wait(240), "the ingest never reached its second commit"
        in_flight = corpus.state.conn.execute("SELECT COUNT(*) FROM vector_journal WHERE state = 'writing'")
        assert in_flight.fetchone()[0] == 1  # vectors written, not yet live
        backup = sitrep(data, "backup", str(tmp_path / "backup"), "--json", cwd=tmp_path)
    finally:
        resume.set()
        ingest.join(240)
    assert backup.returncode == 0, backup.stderr[-3000:]
    manifest = json.loads(backup.stdout)
    first = 3 + FIRST_BATCH_CHUNKS  # the three fixture articles and the ingest's first batch
    expected = {"documents": first, "chunks": first, "sources": first, "vectors": first, "tombstones": 3}
    assert manifest["counts"] == expected and manifest["re_embedded"] == 0
    assert manifest["format"] == FORMAT_VERSION and manifest["store"] == "chroma-embedded"
    assert corpus.stats().documents == 3 + FIRST_BATCH_CHUNKS + 12  # the ingest went on and finished

    # The backup holds exactly the vectors the store has for those passages.
    folder = tmp_path / "backup"
    ids = (folder / "vector_ids.txt").read_text().split()
    vectors = np.load(folder / "vectors.npy")
    stored = corpus.store.vectors(ids)
    assert len(ids) == len(stored) == vectors.shape[0]
    assert np.allclose(vectors, np.stack([stored[i] for i in ids]), atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".backup")) == []
    assert folder.stat().st_mode & 0o777 == 0o700  # the state holds people's questions
    assert {p.stat().st_mode & 0o777 for p in folder.iterdir()} == {0o600}

    # Restore into an empty folder and use it (in this process: the model is already loaded).
    restored = tmp_path / "restored"
    monkeypatch.setenv("SITREP_DATA_DIR", str(restored))
    monkeypatch.chdir(tmp_path)
    assert main(["restore", str(folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["restored"] == expected
    assert report["stats"]["documents"] == expected["documents"] and report["stats"]["chunks"] == expected["chunks"]

    assert main(["search", "shelling near checkpoint 17 in Nad Ali", "--json", "-k", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["url"] == "https://dispatch.test/17"
    assert main(["search", "MI-17 helicopters crashed in Nawa", "--json", "-k", "3"]) == 0
    urls = {r["url"] for r in json.loads(capsys.readouterr().out)["results"]}
    assert "https://example-news.test/helmand-helicopters" in urls
    # The tombstones came along: the removed article is still refused.
    nato = tmp_path / "nato.json"
    nato.write_text(json.dumps([{"text": fixture_articles()[2].text, "url": "https://example-news.test/stoltenberg"}]))
    assert main(["ingest", str(nato), "--json"]) == 1
    assert "removed with `sitrep remove`" in json.loads(capsys.readouterr().out)["failed"][0]["error"]


def test_vectors_replaced_after_the_snapshot_are_embedded_again(tmp_path: Path,
                                                                corpus_factory: Callable[..., Corpus]) -> None:
    from retrieval.backup import export_vectors, snapshot

    corpus = corpus_factory(articles=fixture_articles())
    work = tmp_path / "work"
    work.mkdir()
    snapshot(corpus.config.data_dir / "state.db", work / "state.db")
    gone = corpus.state.doc_chunk_ids(corpus.documents()[0].doc_id)
    original = corpus.store.vectors(gone)
    corpus.store.delete(gone)  # as an ingest does once a replaced version's commit is through
    total, re_embedded = export_vectors(corpus, work)
    assert (total, re_embedded) == (corpus.stats().chunks, len(gone))
    ids = (work / "vector_ids.txt").read_text().split()
    vectors = np.load(work / "vectors.npy")
    for chunk_id in gone:
        assert float(vectors[ids.index(chunk_id)] @ original[chunk_id]) > 0.999


def test_backup_and_restore_with_a_chroma_server(tmp_path: Path, corpus_factory: Callable[..., Corpus],
                                                 chroma_server: tuple[str, int]) -> None:
    from retrieval.backup import backup, restore

    host, port = chroma_server
    corpus = corpus_factory(articles=fixture_articles(), chroma_host=host, chroma_port=port,
                            collection=f"backup-{uuid.uuid4().hex[:8]}")
    manifest = backup(corpus.config, tmp_path / "backup")
    assert manifest["store"] == f"chroma-server {host}:{port}" and manifest["counts"]["vectors"] == 4
    assert any("Chroma server's own files" in note for note in manifest["not_included"])

    target = replace(corpus.config, data_dir=tmp_path / "restored", collection=f"restored-{uuid.uuid4().hex[:8]}")
    assert restore(target, tmp_path / "backup")["counts"] == manifest["counts"]
    restored = corpus_factory(data_dir=target.data_dir, chroma_host=host, chroma_port=port,
                              collection=target.collection)
    assert restored.store.count() == restored.stats().chunks == corpus.stats().chunks
    hits = restored.search("MI-17 helicopters crashed in Nawa", k=1, mode="dense")
    assert hits[0].url == "https://example-news.test/helmand-helicopters"


def test_restore_refusals(cli_env: Path, tmp_path: Path, corpus_factory: Callable[..., Corpus],
                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    corpus_factory(data_dir=cli_env, articles=fixture_articles()).close()
    folder = tmp_path / "backup"
    assert main(["backup", str(folder)]) == 0
    assert "Backed up 4 articles" in capsys.readouterr().out

    def restore(*args: str) -> tuple[int, str]:
        code = main(["restore", str(folder), *args])
        out, err = capsys.readouterr()
        return code, out + err

    code, said = restore()  # into the folder it came from: not empty
    assert code == 2 and "is not empty (4 documents" in said and "--force" in said
    code, said = restore("--force")
    assert code == 0 and "the counts match the backup" in said

    monkeypatch.setenv("SITREP_DATA_DIR", str(tmp_path / "fresh"))
    manifest = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps({**manifest, "format": FORMAT_VERSION + 1}))
    code, said = restore()
    assert code == 2 and "written by a newer sitrep" in said

    (folder / MANIFEST).write_text(json.dumps(manifest))
    ids = folder / "vector_ids.txt"
    ids.write_text(ids.read_text().replace("0", "1", 1))
    code, said = restore()
    assert code == 2 and "vector_ids.txt is missing or damaged" in said

    (folder / MANIFEST).unlink()
    code, said = restore()
    assert code == 2 and "has no manifest.json" in said
    assert not (tmp_path / "fresh" / "state.db").exists()  # refused before anything was touched


# The CLI with a file-size limit: the portable stand-in for a full disk (see test_faults_disk.py).
LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from bot.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def test_backup_to_a_full_disk_or_an_unwritable_folder(cli_env: Path, tmp_path: Path,
                                                        corpus_factory: Callable[..., Corpus],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    corpus_factory(data_dir=cli_env, articles=fixture_articles()).close()
    size = (cli_env / "state.db").stat().st_size
    full = subprocess.run([sys.executable, "-c", LIMITED, str(size // 2), "backup", str(tmp_path / "full")],
                          env=_env(cli_env), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert full.returncode == 2 and "Traceback" not in full.stderr, full.stderr[-2000:]
    assert [line for line in full.stderr.splitlines() if line.strip()] == [
        f"sitrep: Cannot write the backup to {tmp_path / 'full'} (disk I/O error); nothing was written: the disk "
        "looks full: free some space or choose another disk, then run it again."]

    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "keep.txt").write_text("mine")
    cases = [(tmp_path / "a-file" / "backup", "a-file is not a folder"), (tmp_path / "used", "already exists")]
    if not _can_create_in(Path("/sys")):  # unwritable even to root
        cases.append((Path("/sys/sitrep-backup"), "Operation not permitted|Permission denied"))
    for dest, reason in cases:
        assert main(["backup", str(dest)]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and err.startswith("sitrep: "), err
        assert re.search(reason, err), err
    assert not (tmp_path / "full").exists()
    assert [p.name for p in tmp_path.iterdir() if ".partial-" in p.name] == []
    assert [p.name for p in (tmp_path / "used").iterdir()] == ["keep.txt"]


def _can_create_in(folder: Path) -> bool:
    try:
        Path(tempfile.mkdtemp(dir=folder)).rmdir()
    except OSError:
        return not folder.is_dir()
    return True
