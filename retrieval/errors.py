"""The one exception hierarchy of sitrep.

Every expected failure raises a subclass of :class:`SitrepError` whose message a user can act on
(what went wrong, and what to do). The command line and the Slack bot print that message and never a
traceback; the log keeps the details.
"""

from __future__ import annotations


class SitrepError(Exception):
    """Base class: an expected failure with a message meant for the user."""


class ConfigError(SitrepError):
    """A setting is missing or invalid. The message names the variable."""


class SourceError(SitrepError):
    """One source (file, URL, feed, record) could not be ingested. Other sources are unaffected."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(message)
        self.source = source
        self.message = message

    def __str__(self) -> str:
        return self.message


class ModelFilesError(SitrepError):
    """Model or tokenizer files that should have come with the installed packages are missing or corrupt."""


class EmbeddingMismatchError(SitrepError):
    """The store was built with another embedding model than the one configured."""


class StoreError(SitrepError):
    """The vector store or the state database is unreachable or failed."""


class QueryError(SitrepError):
    """A question or search query is unusable (empty, too long, bad date filter)."""
