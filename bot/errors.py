"""The errors of sitrep's talking side (the language model, Slack), in the project's one hierarchy."""

from __future__ import annotations

from retrieval.errors import SitrepError


class LLMError(SitrepError):
    """The language-model server failed; the message is one sentence for the user."""


class SlackSetupError(SitrepError):
    """Slack credentials or connection are wrong."""


def describe_failure(exc: BaseException) -> str:
    """One sentence for the person waiting: the error's own message when it is an expected failure."""
    if isinstance(exc, SitrepError):
        message = " ".join(str(exc).split())
        if message:
            return message if message.endswith((".", "!", "?")) else message + "."
    return "Sorry, something went wrong while answering; the details are in the sitrep log."
