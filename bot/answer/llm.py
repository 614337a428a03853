"""The chat-model client: the openai package against OpenAI or any compatible server (Ollama, vLLM, ...).

Timeouts and retries come from Settings (``SITREP_LLM_TIMEOUT``, ``SITREP_LLM_MAX_RETRIES``; the openai
client retries 408/409/429/5xx and connection failures with backoff, honouring ``Retry-After``). Every
failure becomes an :class:`~retrieval.errors.LLMError` whose message is one sentence a user can act on;
the log keeps the details (status, error type, server message with secrets removed), never the key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import openai

from bot.errors import LLMError
from bot.settings import LLMSettings
from retrieval.errors import ConfigError

log = logging.getLogger(__name__)

Message = dict[str, str]
# Reasoning models take max_completion_tokens and no temperature.
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
# Compatible local servers (Ollama, llama.cpp) ignore the key, but the openai client insists on one.
_PLACEHOLDER_KEY = "sitrep-no-key"


class LLMClient:
    """Completions and streamed completions from the configured model (``SITREP_LLM_MODEL``)."""

    def __init__(self, settings: LLMSettings) -> None:
        if not settings.api_key and not settings.base_url:
            raise ConfigError(
                "SITREP_ANSWER_MODE=llm needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local "
                "OpenAI-compatible server); set one or use SITREP_ANSWER_MODE=extractive."
            )
        self.model = settings.model
        self.timeout = settings.timeout
        self.retries = settings.max_retries
        self.base_url = settings.base_url or "https://api.openai.com/v1"
        self._secrets = [settings.api_key] if settings.api_key else []
        self._client = openai.OpenAI(
            api_key=settings.api_key or _PLACEHOLDER_KEY,
            base_url=settings.base_url,
            timeout=settings.timeout,
            max_retries=settings.max_retries,
        )

    def _params(self, messages: Sequence[Message], max_tokens: int) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.model, "messages": list(messages)}
        if self.model.lower().startswith(_REASONING_PREFIXES):
            params["max_completion_tokens"] = max_tokens
        else:
            params["max_tokens"] = max_tokens
            params["temperature"] = 0
        return params

    def complete(self, messages: Sequence[Message], *, max_tokens: int = 800) -> str:
        """The whole reply text."""
        try:
            response = self._client.chat.completions.create(**self._params(messages, max_tokens))
            content = response.choices[0].message.content
        except openai.APIError as exc:
            raise self._error(exc) from exc
        except (AttributeError, IndexError, TypeError, ValueError) as exc:  # a body that is not a completion
            raise self._garbage(exc) from exc
        if not isinstance(content, str):
            raise self._garbage(TypeError(f"content is {type(content).__name__}"))
        return content

    def stream(self, messages: Sequence[Message], *, max_tokens: int = 800) -> Iterator[str]:
        """Text deltas as the server streams them."""
        chunks_seen = 0
        try:
            chunks = self._client.chat.completions.create(**self._params(messages, max_tokens), stream=True)
            for chunk in chunks:
                # Servers may send chunks without choices (usage, keep-alive) or without content (role).
                chunks_seen += 1
                if not getattr(chunk, "choices", None):
                    continue
                delta = chunk.choices[0].delta
                text = getattr(delta, "content", None) if delta is not None else None
                if text:
                    if not isinstance(text, str):
                        raise TypeError(f"delta content is {type(text).__name__}")
                    yield text
        except openai.APIError as exc:
            raise self._error(exc) from exc
        except (AttributeError, IndexError, TypeError, ValueError) as exc:  # malformed chunks
            raise self._garbage(exc) from exc
        if not chunks_seen:  # a body that was not an event stream at all yields nothing
            raise self._garbage(ValueError("no server-sent events in the response"))

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def _garbage(self, exc: BaseException) -> LLMError:
        log.warning("llm.bad_response model=%s base_url=%s error=%s", self.model, self.base_url,
                    self._scrub(f"{type(exc).__name__}: {exc}")[:300])
        return LLMError(self._unreadable())

    def _unreadable(self) -> str:
        return (
            "The language model server sent a reply sitrep could not read; "
            "check that OPENAI_BASE_URL points at an OpenAI-compatible API."
        )

    def _error(self, exc: openai.APIError) -> LLMError:
        status = getattr(exc, "status_code", None)
        log.warning("llm.error kind=%s status=%s model=%s base_url=%s detail=%s", type(exc).__name__, status,
                    self.model, self.base_url, self._scrub(str(exc))[:300])
        return LLMError(self._sentence(exc))

    def _sentence(self, exc: openai.APIError) -> str:
        """One sentence for the user about ``exc``."""
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return "The language model server rejected the API key; check OPENAI_API_KEY."
        if isinstance(exc, openai.RateLimitError):
            if getattr(exc, "code", None) == "insufficient_quota":
                return "The language model account has run out of quota; check its billing, or unset OPENAI_API_KEY."
            plural = "retry" if self.retries == 1 else "retries"
            retried = f" (still after {self.retries} {plural})" if self.retries else ""
            return f"The language model server is rate-limiting requests{retried}; try again in a minute."
        if isinstance(exc, openai.NotFoundError):
            return (
                f"The language model server does not know the model {self.model!r}; set SITREP_LLM_MODEL to a "
                "model it serves (or check the path in OPENAI_BASE_URL)."
            )
        if isinstance(exc, openai.APITimeoutError):
            return (
                f"The language model server did not answer within {self.timeout:g} seconds; try again, or raise "
                "SITREP_LLM_TIMEOUT."
            )
        if isinstance(exc, openai.APIConnectionError):
            return (
                "Could not reach the language model server; check OPENAI_BASE_URL and that the server is running."
            )
        if isinstance(exc, openai.BadRequestError):
            return (
                "The language model server refused the request as invalid; the prompt may be too long for the "
                "model (lower SITREP_CONTEXT_TOKENS) or the model may not support chat."
            )
        if isinstance(exc, openai.APIResponseValidationError):
            return self._unreadable()
        if isinstance(exc, openai.APIStatusError):
            return f"The language model server failed (HTTP {exc.status_code}); try again later."
        return f"The language model request failed ({type(exc).__name__}); try again later."
