"""bench/bench_pipeline.py on the one-week RealTime QA fixture: the three measurements cover the same chunks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import bench_pipeline
from bench.realtimeqa import load_benchmark
from retrieval.embeddings import MiniLMEmbedding, WordPieceCounter

from conftest import FIXTURES

FIXTURE = FIXTURES / "realtimeqa"


def test_a_round_measures_the_same_chunks_three_ways(tmp_path: Path, embedder: MiniLMEmbedding,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("retrieval.corpus.make_embedder", lambda *a, **k: embedder)
    articles = load_benchmark([FIXTURE]).articles
    stand_in = bench_pipeline.stand_in_embedder(articles, tmp_path)
    result = bench_pipeline.run_round(1, articles, tmp_path, WordPieceCounter(), stand_in)
    assert result.chunks >= len(articles) and min(result.raw_s, result.pipeline_s, result.bare_s) > 0
    assert "embed" not in vars(embedder)  # the stand-in is gone: the next round embeds with the model again
    table = bench_pipeline.render([result], len(articles))
    assert table.count("\n| ") == 3 and f"| all | {result.chunks:,} |" in table


def test_the_long_run_without_the_model_counts_cpu_and_an_unchanged_re_ingest(
        tmp_path: Path, embedder: MiniLMEmbedding, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("retrieval.corpus.make_embedder", lambda *a, **k: embedder)
    articles = load_benchmark([FIXTURE]).articles
    bare = bench_pipeline.run_bare(articles, tmp_path, bench_pipeline.stand_in_embedder(articles, tmp_path))
    assert bare.articles == len(articles) and bare.chunks >= len(articles) and bare.cpu_s > 0
    assert "embed" not in vars(embedder)
    assert f"| {bare.articles:,} | {bare.chunks:,} |" in bench_pipeline.render_bare(bare)


def test_the_stand_in_scatters_real_vectors_so_they_cluster_like_the_model_s(
        tmp_path: Path, embedder: MiniLMEmbedding, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("retrieval.corpus.make_embedder", lambda *a, **k: embedder)
    articles = load_benchmark([FIXTURE]).articles
    stand_in = bench_pipeline.stand_in_embedder(articles, tmp_path)
    out = stand_in(["any text"] * 200)
    assert out.shape == (200, 384) and np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    nearest_real = (out @ stand_in.base.T).max(axis=1)  # type: ignore[attr-defined]
    assert nearest_real.min() > 0.6  # each is a real chunk's vector with noise, not a random direction
    assert len({v.tobytes() for v in out}) == 200  # and no two are the same
