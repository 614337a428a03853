"""Building the long-lived objects (corpus, engine) from settings, in one place."""

from __future__ import annotations

import importlib.resources
import logging
from pathlib import Path

from bot.settings import Settings
from retrieval.corpus import Corpus, CorpusConfig, IngestReport
from retrieval.loaders import FetchOptions

log = logging.getLogger(__name__)


def corpus_config(settings: Settings) -> CorpusConfig:
    """The corpus configuration the settings describe."""
    return CorpusConfig(
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        chroma_host=settings.chroma_host,
        chroma_port=settings.chroma_port,
        collection=settings.chroma_collection,
        embedding_model=settings.embedding_model,
        openai_api_key=settings.openai_api_key,
        openai_base_url=settings.openai_base_url,
        fetch=FetchOptions(
            timeout=settings.fetch_timeout,
            max_bytes=settings.max_fetch_bytes,
            max_file_bytes=settings.max_file_bytes,
            allow=settings.fetch_allow,
        ),
    )


def open_corpus(settings: Settings, reindexing: bool = False, writes_only: bool = False) -> Corpus:
    """Open the corpus the settings point at (``reindexing`` accepts a store built with another model;
    ``writes_only`` for a command that never searches, so memory holds one shard's vector index)."""
    return Corpus.open(corpus_config(settings), reindexing=reindexing, writes_only=writes_only)


def sample_corpus_path() -> Path:
    """The sample articles shipped with sitrep (October 2020 coverage of Helmand)."""
    return Path(str(importlib.resources.files("retrieval.sample").joinpath("articles.json")))


def ensure_sample(corpus: Corpus) -> IngestReport | None:
    """Ingest the sample corpus when the store is empty, so a newcomer has something to ask about."""
    if corpus.stats().documents:
        return None
    report = corpus.ingest([str(sample_corpus_path())], source_name=None)
    log.info("sample.ingested added=%d", report.added)
    return report
