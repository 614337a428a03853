"""`sitrep ingest / search / stats / eval` as a user runs them, and crash safety under `kill -9`."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.runtime import sample_corpus_path
from retrieval.store import embedded_size_advice


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("SITREP_DATA_DIR", str(data))
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("OPENAI_API_KEY", "SLACK_BOT_TOKEN", "CHROMA_HOST"):
        monkeypatch.delenv(name, raising=False)
    return data


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ingest_sample_then_search(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ingest", str(sample_corpus_path()), "--json")
    assert code == 0
    assert json.loads(out) == {"added": 1, "updated": 0, "unchanged": 0, "duplicates": 0, "failed": [],
                               "warnings": [], "redated": 0, "redated_documents": []}
    code, out, _ = run(capsys, "ingest", str(sample_corpus_path()), "--json")
    assert json.loads(out)["unchanged"] == 1

    code, out, _ = run(capsys, "search", "--json", "helicopter crash Nawa")
    result = json.loads(out)
    first = result["results"][0]
    assert result["query"] == "helicopter crash Nawa"
    assert "MI-17 helicopters" in first["text"] and "Nawa district" in first["text"]
    assert first["source"] == "TOLOnews" and first["published"].startswith("2020-10-15")
    assert set(first) == {"rank", "score", "chunk_id", "doc_id", "title", "source", "url", "published", "date_source",
                          "text"}
    assert first["date_source"] == "published"

    code, out, _ = run(capsys, "search", "--json", "--since", "2020-10-16", "helicopter crash Nawa")
    assert json.loads(out)["results"] == []
    code, _, err = run(capsys, "search", "--since", "next tuesday", "helicopter")
    assert code == 2 and "--since 'next tuesday' is not a date" in err

    code, out, _ = run(capsys, "stats", "--json")
    stats = json.loads(out)
    assert stats["documents"] == 1 and stats["sources"] == 1 and stats["chunks"] >= 3
    assert stats["embedding_model"] == "all-MiniLM-L6-v2-int8" and stats["store"] == "chroma-embedded"


def test_folder_with_good_and_bad_files(env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.txt").write_text("Fighting continued in Nad Ali district on Friday, officials said.\n")
    (folder / "empty.txt").write_text("")
    (folder / "latin1.txt").write_bytes("Caf\xe9 owners in Lashkargah closed their shops.".encode("latin-1"))
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (folder / "records.jsonl").write_text(
        '{"text": "Record one about Marja.", "title": "One", "published": "2020-10-13"}\n'
        "{not json\n"
        '{"text": "Record three about Babaji.", "title": "Three"}\n'
    )
    code, out, _ = run(capsys, "ingest", str(folder), "--json")
    report = json.loads(out)
    assert code == 1
    assert report["added"] == 3
    errors = {Path(f["source"].split("#")[0]).name: f["error"] for f in report["failed"]}
    assert set(errors) == {"empty.txt", "latin1.txt", "broken.pdf", "records.jsonl"}
    assert "line 2" in errors["records.jsonl"]
    code, out, _ = run(capsys, "stats", "--json")
    assert json.loads(out)["documents"] == 3


def test_ingest_says_when_the_embedded_store_outgrows_the_memory_budget(
        env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run(capsys, "ingest", str(sample_corpus_path()))
    assert code == 0 and "note:" not in err
    monkeypatch.setattr("retrieval.store.EMBEDDED_CHUNK_LIMIT", 1)
    code, out, err = run(capsys, "ingest", str(sample_corpus_path()), "--json")
    assert code == 0 and json.loads(out)["unchanged"] == 1  # stdout stays JSON; the note goes to stderr
    assert err.startswith("note: the embedded Chroma store holds") and "CHROMA_HOST" in err
    assert embedded_size_advice(10**6, "127.0.0.1", env) is None  # a server holds the index in its own process


def test_eval_reports_document_metrics(env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "ingest", str(sample_corpus_path()))
    doc_id = json.loads(run(capsys, "search", "--json", "Stoltenberg")[1])["results"][0]["doc_id"]
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps({"question": "What did Stoltenberg say?", "gold_doc_ids": [doc_id]}) + "\n"
                     + json.dumps({"question": "Who won the football match?", "gold_urls": ["https://x.test/"]}) + "\n")
    code, out, _ = run(capsys, "eval", str(cases), "--json")
    assert code == 0
    assert json.loads(out) == {"n": 2, "hits@1": 0.5, "hits@5": 0.5, "hits@10": 0.5, "mrr@10": 0.5}


def test_eval_ranks_each_question_over_what_was_published_when_it_was_asked(
        env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = tmp_path / "bridge.jsonl"
    records.write_text("\n".join(json.dumps(r) for r in [
        {"url": "https://x.test/reopened", "title": "Harbour bridge reopens", "published": "2022-06-10T09:00:00Z",
         "text": "The harbour bridge in Lashkargah reopened to traffic after repairs, the governor said."},
        {"url": "https://x.test/closed", "title": "Harbour bridge closed again", "published": "2022-06-20T18:00:00Z",
         "text": "The harbour bridge in Lashkargah closed again after floods damaged its pillars, officials said."},
    ]) + "\n")
    run(capsys, "ingest", str(records))
    question = "Why was the harbour bridge in Lashkargah closed?"
    cases = tmp_path / "cases.jsonl"
    for asked_at, found in (("2022-06-15", 0.0), ("2022-06-20", 1.0), ("2022-06-20T12:00", 0.0), (None, 1.0)):
        line = {"question": question, "gold_urls": ["https://x.test/closed"]}
        cases.write_text(json.dumps(line | ({"asked_at": asked_at} if asked_at else {})) + "\n")
        for mode in ("hybrid", "rrf"):
            code, out, _ = run(capsys, "eval", str(cases), "--json", "--mode", mode)
            assert code == 0
            assert json.loads(out)["hits@10"] == found, (asked_at, mode)  # a bare date: by the end of that day


def test_kill_9_during_ingest_leaves_store_consistent(env: Path, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    n_docs = 150
    for i in range(n_docs):
        (folder / f"a{i:03}.txt").write_text(
            f"Report {i}: clashes in district {i} of Helmand displaced {i * 7} families, officials said. "
            f"Aid agencies delivered food to {i * 3} households near Lashkargah on day {i}.\n"
        )
    cmd = [sys.executable, "-m", "bot.cli.main", "ingest", str(folder), "--json"]
    proc = subprocess.Popen(cmd, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    db = env / "state.db"
    deadline = time.monotonic() + 60
    committed = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=1) as conn:
                    committed = conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
            except sqlite3.Error:
                committed = 0
            if committed:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "the ingest finished before it could be killed; make the corpus larger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < committed < n_docs

    finish = subprocess.run(cmd, env=os.environ.copy(), capture_output=True, text=True, timeout=120)
    assert finish.returncode == 0, finish.stderr
    report = json.loads(finish.stdout)
    assert report["added"] + report["unchanged"] == n_docs
    assert report["unchanged"] >= committed

    from retrieval.corpus import Corpus, CorpusConfig

    corpus = Corpus.open(CorpusConfig(data_dir=env))
    try:
        stats = corpus.stats()
        assert stats.documents == n_docs
        assert corpus.store.count() == stats.chunks
        assert corpus.state.conn.execute("SELECT COUNT(*) FROM vector_journal").fetchone()[0] == 0
    finally:
        corpus.close()


def test_ingest_and_reindex_never_load_the_chat_slack_or_pdf_libraries(env: Path) -> None:
    """Memory: `sitrep ingest` and `reindex` import only what they use (the OpenAI and Slack clients, the web
    server and pypdf cost ~35 MB of the ingest's budget)."""
    script = (
        "import sys\nfrom bot.cli.main import main\n"
        f"assert main(['ingest', {str(sample_corpus_path())!r}]) == 0\nassert main(['reindex']) == 0\n"
        "heavy = ('openai', 'slack_sdk', 'slack_bolt', 'uvicorn', 'starlette', 'apscheduler', 'pypdf')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=os.environ.copy(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
