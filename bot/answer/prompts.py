"""Prompt templates, loaded from the ``prompts`` package (``prompts/*.txt``) at run time.

Templates use ``string.Template`` placeholders (``$question``, ``$sources``): substituted values are
never re-parsed, so braces or dollar signs inside article text cannot break or alter a prompt.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from string import Template

from retrieval.errors import ConfigError

PROMPT_NAMES = ("system", "answer", "summarize", "digest", "rewrite", "translate")

ABSTAIN_TOKEN = "INSUFFICIENT_SOURCES"


@functools.cache
def load_template(name: str) -> Template:
    """The template ``prompts/<name>.txt`` as shipped with the installed package."""
    if name not in PROMPT_NAMES:
        raise ConfigError(f"Unknown prompt {name!r}; known prompts: {', '.join(PROMPT_NAMES)}.")
    try:
        text = importlib.resources.files("prompts").joinpath(f"{name}.txt").read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise ConfigError(
            f"The prompt file prompts/{name}.txt is missing from the installation; reinstall sitrep (`pip install .`)."
        ) from exc
    return Template(text.strip())


def render(name: str, **values: object) -> str:
    """Fill template ``name``; ``$abstain_token`` is always available. Missing values are an error."""
    try:
        return load_template(name).substitute({"abstain_token": ABSTAIN_TOKEN, **values})
    except KeyError as exc:
        raise ConfigError(f"The prompt prompts/{name}.txt uses ${exc.args[0]}, which sitrep does not provide.") from exc


_SHINGLE = 5  # words in a row that count as copying the prompt


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {tuple(words[i : i + _SHINGLE]) for i in range(len(words) - _SHINGLE + 1)}


@functools.cache
def _prompt_shingles() -> frozenset[tuple[str, ...]]:
    """Runs of words of every template's own text (placeholders left out): what a reply must not copy."""
    found: set[tuple[str, ...]] = set()
    for name in PROMPT_NAMES:
        for part in re.split(r"\$\w+", load_template(name).template):
            found |= _shingles(part)
    return frozenset(found)


def copies_prompt(text: str) -> bool:
    """Whether ``text`` repeats five or more words in a row of sitrep's own prompt text (its instructions
    and examples, not the question or the sources put into it)."""
    return bool(_shingles(text) & _prompt_shingles())
