"""What every loader shares: where a text came from, readable titles, and per-source error isolation."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from retrieval.documents import Article, LoadFailure
from retrieval.errors import SourceError

log = logging.getLogger(__name__)

LoadItem = Article | LoadFailure


@dataclass(frozen=True)
class Origin:
    """Where a text came from: what an :class:`Article` needs besides what is extracted from the content.

    ``where`` names the source in error messages (a path or URL). ``outlet`` is the user's
    ``--source-name`` override, if any: it wins over any outlet found in the content.
    ``fallback_title`` is used when the content has no title of its own.
    """

    where: str
    source_key: str
    url: str = ""
    kind: str = "file"
    outlet: str = ""
    fallback_title: str = ""


def readable_title(stem: str) -> str:
    """A file or URL name made readable: ``helmand_fighting-update`` -> ``Helmand fighting update``."""
    words = re.sub(r"[\s_\-+.]+", " ", stem).strip()
    if words.islower():
        words = words[:1].upper() + words[1:]
    return words


def guarded(source: str, items: Iterable[LoadItem]) -> Iterator[LoadItem]:
    """Yield ``items``; a failure while producing them becomes a LoadFailure for ``source``, never an exception.

    Expected problems arrive as :class:`SourceError` with a message for the user. Anything else is a
    bug or a library choking on one odd input; it is logged with its traceback and reported for this
    source only, so one bad file never stops the rest of an ingest.
    """
    try:
        yield from items
    except SourceError as exc:
        yield LoadFailure(exc.source, exc.message)
    except Exception as exc:
        log.exception("loader crashed source=%s", source)
        yield LoadFailure(source, f"unexpected error loading {source}: {type(exc).__name__}: {exc}")
