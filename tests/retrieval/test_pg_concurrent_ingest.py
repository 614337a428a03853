"""Two ingests at once on two "hosts" (two processes with their own data folders) sharing one PostgreSQL and one
Chroma server: no duplicate and no lost chunk, and the state database and Chroma agree id for id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from retrieval.corpus import Corpus, CorpusConfig
from retrieval.embeddings import MiniLMEmbedding

from conftest import ROOT

TOPICS = ["flood", "bridge", "convoy", "election", "harvest", "clinic", "airport", "market"]


def write_articles(folder: Path, prefix: str, n: int) -> None:
    """``n`` distinct articles of several paragraphs each (so each has a few chunks) as text files."""
    folder.mkdir(parents=True)
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        paragraphs = [f"{prefix} report {i}: the {topic} in district {i} was in the news on day {d}, officials said "
                      f"after a meeting about {topic} number {i * 7 + d}. " * 6 for d in range(3)]
        (folder / f"{prefix}-{i:03d}.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")


@pytest.mark.chroma_server
def test_two_ingests_at_once_leave_no_duplicate_and_no_lost_chunk(
        tmp_path: Path, pg_url: str, chroma_server: tuple[str, int], embedder: MiniLMEmbedding,
        monkeypatch: pytest.MonkeyPatch) -> None:
    host, port = chroma_server
    collection = f"t{uuid.uuid4().hex[:12]}"
    shared, own_a, own_b = tmp_path / "shared", tmp_path / "a", tmp_path / "b"
    write_articles(shared, "shared", 40)  # both ingest these: each must be stored once
    write_articles(own_a, "a", 15)
    write_articles(own_b, "b", 15)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SITREP_", "OPENAI_", "SLACK_", "CHROMA_"))}
    env.update({"SITREP_DATABASE_URL": pg_url, "CHROMA_HOST": host, "CHROMA_PORT": str(port),
                "SITREP_CHROMA_COLLECTION": collection, "PYTHONPATH": str(ROOT)})
    runs = [subprocess.Popen([sys.executable, "-m", "bot.cli.main", "ingest", str(shared), str(own), "--json"],
                             env={**env, "SITREP_DATA_DIR": str(tmp_path / f"host-{name}")}, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name, own in (("a", own_a), ("b", own_b))]
    reports = []
    for run in runs:
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, err[-2000:]
        reports.append(json.loads(out))
    assert sum(r["added"] for r in reports) == 70  # 40 shared once, 15 + 15 own
    assert sum(r["unchanged"] for r in reports) == 40  # the second ingest found the shared ones stored

    monkeypatch.setattr("retrieval.corpus.make_embedder", lambda *a, **k: embedder)
    corpus = Corpus.open(CorpusConfig(data_dir=tmp_path / "check", database_url=pg_url, chroma_host=host,
                                      chroma_port=port, collection=collection))
    try:
        conn = corpus.state.conn
        chunk_ids = [r[0] for r in conn.execute("SELECT chunk_id FROM chunks")]
        assert corpus.stats().documents == 70
        assert conn.execute("SELECT COUNT(DISTINCT content_hash) FROM documents").fetchone()[0] == 70
        assert conn.execute("SELECT COUNT(*) FROM sources").fetchone()[0] == 70
        assert len(chunk_ids) > 70 and len(set(chunk_ids)) == len(chunk_ids)
        lexical = {r[0] for r in conn.execute("SELECT chunk_id FROM lex_docs")}
        assert lexical == set(chunk_ids)  # every live chunk is indexed lexically, nothing else is
        vector_ids = {i for shard in corpus.store.shards for i in shard.get(include=[])["ids"]}
        assert vector_ids == set(chunk_ids)  # one vector per live chunk, none lost, none stray
        assert conn.execute("SELECT COUNT(*) FROM vector_journal").fetchone()[0] == 0
        hits = corpus.search("convoy in district 2", k=3)
        assert any("district 2" in h.text for h in hits)
    finally:
        corpus.close()
