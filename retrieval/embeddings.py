"""Embedding functions: all-MiniLM-L6-v2 on onnxruntime (default, offline) and OpenAI embeddings.

Both are registered with Chroma (its embedding-function registry) so a collection records which
model built it and reopens with the same one. sitrep computes embeddings itself and hands Chroma the
vectors, so batching is ours: texts are sorted by length and padded per batch, which keeps short
queries cheap (Chroma's stock ONNX function pads everything to 256 word pieces).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from retrieval import heap
from retrieval.errors import ConfigError, SitrepError
from retrieval.wordpieces import MODEL_SHA256, WordPieceCounter, minilm_files

__all__ = [
    "Embedder", "MiniLMEmbedding", "OpenAIEmbedding", "WordPieceCounter", "make_embedder", "minilm_files",
    "model_label",
]

MINILM_NAME = "sitrep-minilm-l6-v2-int8"
OPENAI_NAME = "sitrep-openai"
MINILM_MAX_WORDPIECES = 256  # the model's max_seq_length; longer inputs would be silently cut
MINILM_DIM = 384
# Word pieces one inference may hold (rows × padded width). onnxruntime's attention tensors grow with rows ×
# width²: 32 full-length chunks at once peaked at 885 MB RSS, 4 at 420 MB. In the ingest pipeline 4 rows rose
# up to 134 MB within one inference (peak 573 MB for 80 dev articles), 2 rows 68 MB (peak 431 MB), at no more
# CPU per chunk (18.5 against 21.8 CPU s for 160 chunks). Short texts (queries) still go 32 at a time.
MAX_BATCH_PIECES = 2 * MINILM_MAX_WORDPIECES


@register_embedding_function
class MiniLMEmbedding(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 (int8 ONNX) with length-sorted batches and dynamic padding."""

    def __init__(self, batch_size: int = 32, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_path, tok_path = minilm_files()
        self._tokenizer = Tokenizer.from_file(str(tok_path))
        self._tokenizer.enable_truncation(max_length=MINILM_MAX_WORDPIECES)
        self._tokenizer.no_padding()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or max(1, os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads spin by default, waiting for the next operator: a query (one short text, a few
        # hundred small operators) then spent half its time spinning for a core another process holds, p50
        # 23.9 ms against 9.4 ms without spinning at load ~5 on 2 cores; a batch of long chunks uses ~12% less CPU.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # onnxruntime's arena keeps the largest activations it ever allocated: a batch of 32 full-length
        # chunks left the process at 1.5 GB. Without it, memory stays near the model's size (~300 MB).
        opts.enable_cpu_mem_arena = False
        self._session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
        # Building the session (constant-folding the int8 graph) leaves ~60 MB of freed scratch in the heap,
        # which glibc keeps resident unless asked to return it.
        heap.trim()
        self._batch_size = batch_size
        self._lock = threading.Lock()  # one inference at a time: the session already uses every core

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in the input order."""
        if not texts:
            return np.zeros((0, MINILM_DIM), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), MINILM_DIM), dtype=np.float32)
        for idx in self._batches(lengths, order):
            width = int(lengths[idx[-1]])  # sorted by length: the last is the longest
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            with self._lock:
                (hidden,) = self._session.run(
                    None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
                )
            summed = (hidden * mask[:, :, None]).sum(axis=1)
            pooled = summed / np.clip(mask.sum(axis=1, keepdims=True), 1, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[idx] = pooled / np.clip(norms, 1e-12, None)
        return out

    def _batches(self, lengths: np.ndarray, order: np.ndarray) -> list[np.ndarray]:
        """``order`` (shortest first) cut into runs of at most ``batch_size`` rows and ``MAX_BATCH_PIECES``
        padded word pieces."""
        out, start = [], 0
        while start < len(order):
            end = min(start + self._batch_size, len(order))
            while end - start > 1 and (end - start) * lengths[order[end - 1]] > MAX_BATCH_PIECES:
                end -= 1
            out.append(order[start:end])
            start = end
        return out

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.embed(list(input)))

    @staticmethod
    def name() -> str:
        return MINILM_NAME

    def default_space(self) -> Any:
        return "cosine"

    def supported_spaces(self) -> list[Any]:
        return ["cosine"]

    def max_tokens(self) -> int:
        return MINILM_MAX_WORDPIECES

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbedding:
        # Chroma calls this whenever it reloads the collection's configuration (on every upsert):
        # one shared instance avoids loading the ONNX model again each time.
        return shared_minilm()

    def get_config(self) -> dict[str, Any]:
        return {"model": "all-MiniLM-L6-v2", "weights": "int8", "sha256": MODEL_SHA256}

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        return None

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        return None


@functools.cache
def shared_minilm() -> MiniLMEmbedding:
    """The process's one MiniLM instance (the ONNX session is thread-safe behind its lock)."""
    return MiniLMEmbedding()


@register_embedding_function
class OpenAIEmbedding(EmbeddingFunction[Documents]):
    """OpenAI (or compatible) embeddings, e.g. ``text-embedding-3-small``. The key is never stored."""

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        api_key: str | None = None,
        base_url: str | None = None,
        batch_size: int = 256,
    ) -> None:
        self.model = model
        # Passed in from the settings (OPENAI_API_KEY, OPENAI_BASE_URL), never read from the environment here.
        self._api_key = api_key
        self._base_url = base_url or None
        self._batch_size = batch_size
        self._client: Any = None

    def _get_client(self) -> Any:
        if self._client is None:
            if not self._api_key:
                raise ConfigError("SITREP_EMBEDDING_MODEL selects OpenAI embeddings but OPENAI_API_KEY is unset.")
            from openai import OpenAI

            self._client = OpenAI(api_key=self._api_key, base_url=self._base_url, timeout=60.0, max_retries=3)
        return self._client

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        import openai

        rows: list[list[float]] = []
        client = self._get_client()
        for start in range(0, len(texts), self._batch_size):
            batch = list(texts[start : start + self._batch_size])
            try:
                resp = client.embeddings.create(model=self.model, input=batch)
            except openai.OpenAIError as exc:
                raise SitrepError(f"The embedding server refused the request ({type(exc).__name__}).") from exc
            rows.extend(d.embedding for d in sorted(resp.data, key=lambda d: d.index))
        arr = np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)
        norms = np.linalg.norm(arr, axis=1, keepdims=True)
        return arr / np.clip(norms, 1e-12, None)

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.embed(list(input)))

    @staticmethod
    def name() -> str:
        return OPENAI_NAME

    def default_space(self) -> Any:
        return "cosine"

    def supported_spaces(self) -> list[Any]:
        return ["cosine"]

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> OpenAIEmbedding:
        return OpenAIEmbedding(model=config.get("model", "text-embedding-3-small"))

    def get_config(self) -> dict[str, Any]:
        return {"model": self.model}

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        return None

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        return None


Embedder = MiniLMEmbedding | OpenAIEmbedding


def model_label(model: str) -> str:
    """The name a store records for the configured model, e.g. ``minilm`` or ``openai:text-embedding-3-small``."""
    return "all-MiniLM-L6-v2-int8" if model in ("minilm", "all-MiniLM-L6-v2") else model


def make_embedder(model: str, api_key: str | None = None, base_url: str | None = None) -> Embedder:
    """Build the embedding function a setting names: ``minilm`` (default) or ``openai:<model>``."""
    if model in ("minilm", "all-MiniLM-L6-v2", "all-MiniLM-L6-v2-int8"):
        return shared_minilm()
    if model.startswith("openai:"):
        return OpenAIEmbedding(model=model.split(":", 1)[1], api_key=api_key, base_url=base_url)
    raise ConfigError(
        f"SITREP_EMBEDDING_MODEL={model!r} is not known; use 'minilm' or 'openai:text-embedding-3-small'."
    )
