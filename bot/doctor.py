"""``sitrep doctor``: check settings, model files, the store and the configured connections.

Each check says what is wrong and what to do; no secret value is ever printed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bot.settings import Settings
from retrieval.errors import SitrepError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _run(name: str, fn: Callable[[], str]) -> Check:
    try:
        return Check(name, True, fn())
    except SitrepError as exc:
        return Check(name, False, str(exc))
    except Exception as exc:
        return Check(name, False, f"{type(exc).__name__}: {exc}")


def _model_files() -> str:
    from retrieval.embeddings import minilm_files

    model, _ = minilm_files()
    return f"all-MiniLM-L6-v2 int8 ({model.stat().st_size:,} bytes) and tokenizer verified by sha256"


def _tokenizers() -> str:
    from retrieval.tokens import get_encoding

    get_encoding("cl100k_base")
    get_encoding("o200k_base")
    return "tiktoken cl100k_base and o200k_base available offline"


def _store(settings: Settings) -> Callable[[], str]:
    def check() -> str:
        from bot.runtime import open_corpus

        corpus = open_corpus(settings)
        try:
            stats = corpus.stats()
        finally:
            corpus.close()
        return (f"{stats.documents} documents, {stats.chunks} chunks in {stats.store} "
                f"({settings.data_dir}), model {stats.embedding_model}")

    return check


def _slack(settings: Settings) -> Callable[[], str]:
    def check() -> str:
        from slack_sdk import WebClient
        from slack_sdk.errors import SlackApiError

        client = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=10)
        try:
            auth = client.auth_test()
        except SlackApiError as exc:
            raise SitrepError(
                f"Slack rejected SLACK_BOT_TOKEN ({exc.response.get('error', 'error')}); copy the Bot User OAuth "
                "Token (xoxb-…) from your app's OAuth & Permissions page."
            ) from None
        except Exception as exc:
            raise SitrepError(f"Cannot reach Slack at {settings.slack_api_url} ({type(exc).__name__}).") from None
        missing = [] if settings.slack_signing_secret or settings.slack_app_token else ["SLACK_SIGNING_SECRET"]
        note = f"; set {', '.join(missing)} for HTTP mode" if missing else ""
        return f"connected as {auth.get('user', '?')} in {auth.get('team', '?')}{note}"

    return check


def _llm(settings: Settings) -> Callable[[], str]:
    def check() -> str:
        import openai

        client = openai.OpenAI(api_key=settings.openai_api_key, base_url=settings.openai_base_url,
                               timeout=10.0, max_retries=0)
        try:
            models = [m.id for m in client.models.list()]
        except openai.AuthenticationError:
            raise SitrepError("The LLM server rejected OPENAI_API_KEY (401).") from None
        except openai.APIConnectionError:
            where = settings.openai_base_url or "the OpenAI API"
            raise SitrepError(f"Cannot reach {where}; check OPENAI_BASE_URL.") from None
        except openai.OpenAIError as exc:
            raise SitrepError(f"The LLM server failed the check ({type(exc).__name__}).") from None
        if models and settings.llm_model not in models:
            raise SitrepError(f"SITREP_LLM_MODEL={settings.llm_model!r} is not served there; available: "
                              f"{', '.join(models[:8])}")
        return f"model {settings.llm_model} reachable"

    return check


def run_checks(settings: Settings) -> Iterator[Check]:
    """Run every check that applies to the settings."""
    mode = "llm" if settings.use_llm else "extractive"
    yield Check("settings", True, f"data dir {settings.data_dir}, answers: {mode}")
    yield _run("embedding model", _model_files)
    yield _run("tokenizers", _tokenizers)
    yield _run("store", _store(settings))
    if settings.slack_bot_token:
        yield _run("slack", _slack(settings))
    else:
        yield Check("slack", True, "not configured (SLACK_BOT_TOKEN unset): `sitrep start` runs a local chat")
    if settings.openai_api_key:
        yield _run("llm", _llm(settings))
    else:
        yield Check("llm", True, "not configured (OPENAI_API_KEY unset): extractive answers")
