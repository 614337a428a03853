"""An embedded store split into shards: writes go where each vector lives, searches see every shard, and an
ingest or a reindex releases the shards it no longer writes to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from retrieval.corpus import Corpus
from retrieval.embeddings import MiniLMEmbedding, model_label
from retrieval.shards import placement_path, remove_placement
from retrieval.store import VectorStore

from conftest import ROOT, ChromaServer, fixture_articles


@pytest.fixture(autouse=True)
def small_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("retrieval.store.SHARD_CHUNKS", 4)


def unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, 384)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def shard_ids(store: VectorStore) -> list[set[str]]:
    return [set(shard.get(include=[])["ids"]) for shard in store.shards]


def fill(store: VectorStore, n: int = 10) -> tuple[list[str], np.ndarray]:
    ids = [f"doc{i}:v1:0" for i in range(n)]
    vectors = unit_vectors(n)
    store.upsert(ids[:6], vectors[:6], [{"date_ts": float(i)} for i in range(6)])
    store.upsert(ids[6:], vectors[6:], [{"date_ts": float(i)} for i in range(6, n)])
    return ids, vectors


@pytest.mark.parametrize("release", [False, True])
def test_vectors_fill_shards_in_turn_and_every_operation_finds_them(
        tmp_path: Path, embedder: MiniLMEmbedding, release: bool) -> None:
    store = VectorStore(tmp_path, embedder, model_label("minilm"), release_shards=release)
    ids, vectors = fill(store)
    assert shard_ids(store) == [set(ids[0:4]), set(ids[4:8]), set(ids[8:10])]
    assert store.count() == 10

    # the nearest vector is found in whichever shard holds it, with the other shards' candidates merged in order
    for i in (0, 5, 9):
        hits = store.query(vectors[i], 3, None)
        assert hits[0][0] == ids[i] and hits[0][1] == pytest.approx(1.0, abs=1e-4)
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert store.query(vectors[9], 3, {"date_ts": {"$lt": 4.0}})[0][0] in ids[:4]

    # a vector written again stays in its shard instead of being copied into the newest one
    store.upsert([ids[1]], vectors[9:10], [{"date_ts": 1.0}])
    assert store.count() == 10 and ids[1] in shard_ids(store)[0]
    assert {i for i, _ in store.query(vectors[9], 2, None)} == {ids[1], ids[9]}

    store.update_metadata([ids[2], ids[7]], [{"date_ts": 100.0}, {"date_ts": 100.0}])
    assert {i for i, _ in store.query(vectors[2], 10, {"date_ts": {"$gte": 100.0}})} == {ids[2], ids[7]}
    assert set(store.vectors([ids[0], ids[6], "nowhere"])) == {ids[0], ids[6]}

    store.delete([ids[0], ids[5], ids[9], "never-written"])
    assert store.count() == 7 and ids[9] not in {i for i, _ in store.query(vectors[9], 10, None)}

    # the next vectors go to the newest shard until it is full
    store.upsert(["late:v1:0", "late:v1:1", "late:v1:2"], unit_vectors(3, seed=1), [{"date_ts": 0.0}] * 3)
    assert [len(s) for s in shard_ids(store)] == [3, 3, 3, 1]

    reopened = VectorStore(tmp_path, embedder, model_label("minilm"))
    assert reopened.count() == 10 and reopened.query(vectors[6], 1, None)[0][0] == ids[6]


def test_a_writing_process_keeps_one_shard_open(tmp_path: Path, embedder: MiniLMEmbedding) -> None:
    """With ``release_shards`` Chroma's client is reopened whenever writes move to another shard: the client
    that wrote shard 0 is not the one writing shard 2, and a search in between costs a reopen at the next
    write."""
    store = VectorStore(tmp_path, embedder, model_label("minilm"), release_shards=True)
    store.upsert(["a:v:0"], unit_vectors(1), [{"date_ts": 0.0}])
    first = store.client
    fill(store)
    assert store.client is not first
    writing = store.client
    store.upsert(["b:v:0"], unit_vectors(1, seed=2), [{"date_ts": 0.0}])  # same shard: nothing reopened
    assert store.client is writing
    store.query(unit_vectors(1)[0], 1, None)
    store.upsert(["c:v:0"], unit_vectors(1, seed=3), [{"date_ts": 0.0}])
    assert store.client is not writing and store.count() == 13

    kept = VectorStore(tmp_path, embedder, model_label("minilm"))
    kept_client = kept.client
    kept.upsert(["d:v:0"], unit_vectors(1, seed=4), [{"date_ts": 0.0}])
    kept.delete(["a:v:0"])
    assert kept.client is kept_client  # a process that searches keeps every index it has loaded


def test_a_store_from_before_shards_still_deletes_and_updates(tmp_path: Path, embedder: MiniLMEmbedding) -> None:
    """Vectors written before placements were recorded are looked for in every shard."""
    store = VectorStore(tmp_path, embedder, model_label("minilm"))
    ids, vectors = fill(store, 3)
    store.close()
    remove_placement(placement_path(tmp_path, store.collection, 0))
    store = VectorStore(tmp_path, embedder, model_label("minilm"))
    store.update_metadata([ids[0]], [{"date_ts": 50.0}])
    store.delete([ids[1]])
    assert store.count() == 2
    assert [i for i, _ in store.query(vectors[0], 5, {"date_ts": 50.0})] == [ids[0]]


def test_reindex_rebuilds_every_shard(corpus_factory: Callable[..., Corpus], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("retrieval.store.SHARD_CHUNKS", 1)
    corpus = corpus_factory(articles=fixture_articles())
    chunks = corpus.stats().chunks
    assert len(corpus.store.shards) == chunks > 1
    before = [h.chunk_id for h in corpus.search("helicopter crash Nawa", k=3)]
    assert corpus.reindex() == chunks
    assert corpus.store.count() == chunks and len(corpus.store.shards) == chunks
    assert [h.chunk_id for h in corpus.search("helicopter crash Nawa", k=3)] == before


def test_a_sharded_embedded_store_served_by_chroma(tmp_path: Path, embedder: MiniLMEmbedding) -> None:
    """`chroma run --path DATA_DIR/chroma` serves the shards an embedded ingest made, nothing re-embedded."""
    store = VectorStore(tmp_path, embedder, model_label("minilm"))
    ids, vectors = fill(store)
    store.close()
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "db").symlink_to(tmp_path / "chroma")  # where ChromaServer points `chroma run`
    server = ChromaServer(tmp_path / "server")
    server.start()
    try:
        host, port = server.address
        served = VectorStore(tmp_path / "elsewhere", embedder, model_label("minilm"), host=host, port=port)
        assert served.count() == 10 and len(served.shards) == 3
        assert served.query(vectors[8], 1, None)[0][0] == ids[8]
        served.delete([ids[8]])  # no placement on this side: asked of every shard
        served.upsert(["new:v:0"], unit_vectors(1, seed=5), [{"date_ts": 0.0}])
        assert served.count() == 10 and "new:v:0" in shard_ids(served)[-1]
    finally:
        server.stop()


def collection_names(corpus: Corpus) -> set[str]:
    return {c.name for c in corpus.store.client.list_collections()}


@pytest.mark.both_engines
def test_an_interrupted_reindex_leaves_the_index_in_use(corpus_factory: Callable[..., Corpus],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("retrieval.store.SHARD_CHUNKS", 2)
    corpus = corpus_factory(articles=fixture_articles())
    chunks = corpus.stats().chunks
    before = [h.chunk_id for h in corpus.search("helicopter crash Nawa", k=3, mode="dense")]
    in_use = collection_names(corpus)
    real_embed = corpus.embed
    calls = iter(range(1000))

    def embed_then_stop(texts: list[str]) -> np.ndarray:
        if next(calls) == 1:
            raise KeyboardInterrupt  # Ctrl-C half-way
        return real_embed(texts)

    monkeypatch.setattr(corpus, "embed", embed_then_stop)
    in_batches = corpus.state.all_chunks
    monkeypatch.setattr(corpus.state, "all_chunks", lambda: in_batches(batch=2))
    with pytest.raises(KeyboardInterrupt):
        corpus.reindex()
    assert corpus.store.generation == 0 and corpus.store.count() == chunks
    assert [h.chunk_id for h in corpus.search("helicopter crash Nawa", k=3, mode="dense")] == before
    assert collection_names(corpus) > in_use  # the half-built generation is still there…

    again = Corpus.open(corpus.config)
    assert again.store.generation == 0 and again.store.count() == chunks
    assert again.reindex() == chunks
    assert again.store.generation == 1 and again.state.get_meta("vector_generation") == "1"
    # …until the next reindex, which drops it, and the old generation once it has switched
    shards = {"sitrep_chunks-g1"} | {f"sitrep_chunks-g1.{i}" for i in range(1, -(-chunks // 2))}
    assert collection_names(again) == shards
    placements = {p.name for p in (again.config.data_dir / "shards").glob("*.sqlite3")}
    assert placements == {"sitrep_chunks-g1.sqlite3"}
    reopened = Corpus.open(corpus.config)
    assert reopened.store.count() == chunks
    assert [h.chunk_id for h in reopened.search("helicopter crash Nawa", k=3, mode="dense")] == before


@pytest.mark.both_engines
def test_a_searching_process_follows_a_reindex_made_beside_it(corpus_factory: Callable[..., Corpus]) -> None:
    """The bot keeps its corpus open while `sitrep reindex` runs in another process: once that reindex
    switches generations, the bot's searches and writes use the new one, not the dropped one."""
    bot = corpus_factory(articles=fixture_articles()[:2])
    before = [h.chunk_id for h in bot.search("helicopter crash Nawa", k=3, mode="dense")]
    cli = Corpus.open(bot.config, writes_only=True)
    assert cli.reindex() == bot.stats().chunks
    assert [h.chunk_id for h in bot.search("helicopter crash Nawa", k=3, mode="dense")] == before
    assert bot.store.generation == 1
    bot.ingest_articles(fixture_articles()[2:])
    assert bot.store.count() == bot.stats().chunks == cli.store.count()


def test_a_backup_taken_after_a_reindex_restores_into_an_empty_folder(
        tmp_path: Path, corpus_factory: Callable[..., Corpus]) -> None:
    from retrieval.backup import backup, restore

    corpus = corpus_factory(articles=fixture_articles())
    corpus.reindex()
    assert corpus.store.generation == 1
    backup(corpus.config, tmp_path / "backup")
    target = replace(corpus.config, data_dir=tmp_path / "restored")
    restore(target, tmp_path / "backup")
    restored = corpus_factory(data_dir=target.data_dir)
    assert restored.store.count() == restored.stats().chunks == corpus.stats().chunks
    hits = restored.search("MI-17 helicopters crashed in Nawa", k=1, mode="dense")
    assert hits[0].url == "https://example-news.test/helmand-helicopters"


def test_a_searching_process_sees_what_an_ingest_beside_it_wrote(
        tmp_path: Path, corpus_factory: Callable[..., Corpus]) -> None:
    """`sitrep ingest` from a terminal while the bot runs on the same embedded store: Chroma's index loaded in
    the bot never shows vectors written by another process, so the bot reloads after that ingest commits."""
    corpus_factory(data_dir=tmp_path / "data", articles=fixture_articles()).close()  # as `sitrep start` does
    bot = corpus_factory(data_dir=tmp_path / "data")  # then opens the chat on the same store
    assert bot.search("helicopter crash Nawa", k=1, mode="dense")  # the bot's client has loaded the index
    story = tmp_path / "dam.jsonl"
    story.write_text(json.dumps({
        "title": "Kajaki dam turbine repaired", "url": "https://example-news.test/kajaki", "published": "2020-10-16",
        "text": "Engineers restarted the second turbine of the Kajaki dam on Friday, restoring power to parts of "
                "Lashkargah for the first time in a week, the provincial electricity department said."}) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SITREP_", "OPENAI_", "CHROMA_"))}
    done = subprocess.run([sys.executable, "-m", "bot.cli.main", "ingest", str(story)], cwd=tmp_path, text=True,
                          env={**env, "SITREP_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)},
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    hits = bot.search("Kajaki dam turbine restarted", k=1, mode="dense")
    assert hits and hits[0].url == "https://example-news.test/kajaki"


def test_a_reload_waits_for_the_searches_in_flight(corpus_factory: Callable[..., Corpus]) -> None:
    store = corpus_factory(articles=fixture_articles()).store
    vector = unit_vectors(1)[0]
    failures: list[BaseException] = []

    def search() -> None:
        for _ in range(40):
            try:
                assert len(store.query(vector, 3, None)) == 3
            except BaseException as exc:  # collected for the assertion below
                failures.append(exc)

    threads = [threading.Thread(target=search) for _ in range(3)]
    for thread in threads:
        thread.start()
    for _ in range(15):
        store.reload()
    for thread in threads:
        thread.join()
    assert failures == []


def test_a_reindex_through_a_chroma_server(corpus_factory: Callable[..., Corpus],
                                           chroma_server: tuple[str, int]) -> None:
    host, port = chroma_server
    name = f"reindex-{uuid.uuid4().hex[:8]}"
    corpus = corpus_factory(articles=fixture_articles(), chroma_host=host, chroma_port=port, collection=name)
    before = [h.chunk_id for h in corpus.search("helicopter crash Nawa", k=3, mode="dense")]
    assert corpus.reindex() == corpus.stats().chunks
    assert {c.name for c in corpus.store.client.list_collections() if c.name.startswith(name)} == {f"{name}-g1"}
    assert [h.chunk_id for h in corpus.search("helicopter crash Nawa", k=3, mode="dense")] == before
