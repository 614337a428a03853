"""``sitrep doctor``: check every setting, the model files, the store and the configured connections.

Nothing stops the checks: every bad setting is listed (naming its variable and the fix), then every
check runs whose settings are valid; a check that depends on a bad setting says which one to fix
first. No secret value is ever printed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

from bot.settings import SECTIONS, Problem, Settings
from retrieval.errors import SitrepError
from retrieval.neterrors import connection_cause

OK, FAIL, WARN, SKIP = "ok", "FAIL", "warn", "skip"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | FAIL | warn | skip
    detail: str

    @property
    def ok(self) -> bool:
        return self.status != FAIL


class CheckWarning(SitrepError):
    """A check found something to look at that does not stop sitrep from working."""


def _run(name: str, fn: Callable[[], str]) -> Check:
    try:
        return Check(name, OK, fn())
    except CheckWarning as exc:
        return Check(name, WARN, str(exc))
    except SitrepError as exc:
        return Check(name, FAIL, str(exc))
    except Exception as exc:  # a check must never stop the others
        return Check(name, FAIL, f"{type(exc).__name__}: {connection_cause(exc)}")


def _data_dir(settings: Settings) -> Callable[[], str]:
    def check() -> str:
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=settings.data_dir):
                pass
        except OSError as exc:
            raise SitrepError(f"{settings.data_dir} is not writable ({exc.strerror or exc}); fix its permissions "
                              "or point SITREP_DATA_DIR elsewhere.") from None
        return f"{settings.data_dir.resolve()} is writable"

    return check


def _model_files() -> str:
    from retrieval.embeddings import minilm_files

    model, _ = minilm_files()
    return f"all-MiniLM-L6-v2 int8 ({model.stat().st_size:,} bytes) and tokenizer verified by sha256"


def _tokenizers() -> str:
    from retrieval.tokens import get_encoding

    get_encoding("cl100k_base")
    get_encoding("o200k_base")
    return "tiktoken cl100k_base and o200k_base available offline"


def _database(settings: Settings) -> Callable[[], str]:
    def check() -> str:
        from bot.cli.migrate import state_components
        from retrieval.statedb import connection, describe, engine_version, migrate, stored_versions

        location = settings.state_location
        with connection(location) as conn:
            for component in state_components():  # as any command opening it would (refuses a newer store)
                migrate(conn, component)
            versions = stored_versions(conn)
            kind = engine_version(conn)
        schema = ", ".join(f"{name} v{version}" for name, version in sorted(versions.items()))
        return f"{kind} at {describe(location)}; schema {schema}"

    return check


def _store(settings: Settings) -> Callable[[], str]:
    def check() -> str:
        from bot.runtime import open_corpus
        from retrieval.store import embedded_size_advice

        corpus = open_corpus(settings)
        try:
            stats = corpus.stats()
        finally:
            corpus.close()
        if advice := embedded_size_advice(stats.chunks, settings.chroma_host, settings.data_dir):
            raise CheckWarning(advice[0].upper() + advice[1:])
        return (f"{stats.documents} documents, {stats.chunks} chunks in {stats.store} "
                f"({settings.data_dir}), model {stats.embedding_model}")

    return check


def _slack(settings: Settings) -> Callable[[], str]:
    def check() -> str:
        from slack_sdk import WebClient

        from bot.slack.identity import check_auth

        client = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=10)
        auth = check_auth(client)
        return f"connected as {auth.get('user', '?')} in {auth.get('team', '?')}"

    return check


def _slack_mode(settings: Settings) -> str:
    if settings.slack_app_token:
        return "Socket Mode (SLACK_APP_TOKEN is set)"
    if not settings.slack_signing_secret:
        raise SitrepError(
            "SLACK_SIGNING_SECRET is not set, and HTTP mode needs it: copy it from the app's Basic Information "
            "page, or set SLACK_APP_TOKEN (xapp-…) to use Socket Mode."
        )
    return f"HTTP mode on {settings.http_host}:{settings.http_port} (set SLACK_APP_TOKEN for Socket Mode)"


def _llm(settings: Settings) -> Callable[[], str]:
    def check() -> str:
        import openai

        client = openai.OpenAI(api_key=settings.openai_api_key or "sitrep-no-key",
                               base_url=settings.openai_base_url, timeout=10.0, max_retries=0)
        where = settings.openai_base_url or "the OpenAI API"
        try:
            models = [m.id for m in client.models.list()]
        except openai.AuthenticationError:
            raise SitrepError(f"{where} rejected OPENAI_API_KEY (401); copy a valid key into .env.") from None
        except openai.APIConnectionError as exc:
            raise SitrepError(f"Cannot reach the LLM server at {where}: {connection_cause(exc)}; "
                              "check OPENAI_BASE_URL and the network.") from None
        except openai.APIStatusError as exc:
            raise SitrepError(f"The LLM server at {where} answered HTTP {exc.status_code} when listing models; "
                              "check OPENAI_BASE_URL.") from None
        except openai.OpenAIError as exc:
            raise SitrepError(f"The LLM server at {where} failed the check: {connection_cause(exc)}.") from None
        if models and settings.llm_model not in models:
            raise SitrepError(f"SITREP_LLM_MODEL={settings.llm_model!r} is not served at {where}; available: "
                              f"{', '.join(models[:8])}")
        return f"model {settings.llm_model} reachable at {where}"

    return check


def _digest(settings: Settings) -> str:
    from bot.digest.schedule import load_schedules

    schedules = load_schedules(settings.digest)
    if not schedules:
        return "not configured (SITREP_DIGEST_CHANNEL / SITREP_DIGEST_CONFIG unset)"
    listed = "; ".join(s.describe() for s in schedules)
    if not settings.slack_bot_token:
        raise SitrepError(f"digests are scheduled ({listed}) but SLACK_BOT_TOKEN is not set, so none can be "
                          "posted; set it, or unset SITREP_DIGEST_CHANNEL / SITREP_DIGEST_CONFIG.")
    return listed


def _feeds(settings: Settings) -> str:
    from bot.feeds.registry import FeedRegistry

    feeds = FeedRegistry.open(settings.state_location, settings.feed_settings).feeds()
    if not feeds:
        return "none (add one with `sitrep feeds add URL` or SITREP_FEEDS)"
    failing = [f for f in feeds if f.failures]
    if failing:
        worst = failing[0]
        raise CheckWarning(f"{len(failing)} of {len(feeds)} feeds failing; {worst.url}: {worst.last_error} "
                       "(`sitrep feeds list` shows all)")
    return f"{len(feeds)} feed(s), polled every {settings.feed_poll_minutes:g} minutes"


def _blocked(sections: Collection[str], problems: Collection[Problem]) -> str | None:
    """Why a check cannot run: the bad variables of the sections it needs, if any."""
    names = sorted({p.variable for p in problems if p.section in sections})
    return f"fix {', '.join(names)} first" if names else None


def _gated(name: str, sections: Collection[str], problems: Collection[Problem], fn: Callable[[], str]) -> Check:
    blocked = _blocked(sections, problems)
    return Check(name, SKIP, blocked) if blocked else _run(name, fn)


def run_checks(settings: Settings, problems: Collection[Problem] = (), unknown: Collection[str] = ()
               ) -> Iterator[Check]:
    """Every check, in order: each bad setting, then the files, the store and each configured service."""
    for problem in problems:
        yield Check(f"setting {problem.variable}", FAIL, f"{problem.message} [{SECTIONS[problem.section]}]")
    for name in unknown:
        yield Check("setting", WARN, f"{name} is not a sitrep setting and is ignored")
    if not problems:
        mode = "llm" if settings.use_llm else "extractive"
        yield Check("settings", OK, f"all valid; data dir {settings.data_dir}, answers: {mode}")
    yield _gated("data dir", {"core"}, problems, _data_dir(settings))
    yield _run("embedding model", _model_files)
    yield _run("tokenizers", _tokenizers)
    database = _gated("database", {"core"}, problems, _database(settings))
    yield database
    # Without the database the store and feed checks would only wait for it again.
    unreachable = Check("store", SKIP, "fix the database first") if database.status == FAIL else None
    yield unreachable or _gated("store", {"core", "store"}, problems, _store(settings))
    if settings.slack_bot_token or settings.slack_app_token or _blocked({"slack"}, problems):
        yield _gated("slack", {"slack"}, problems, _slack(settings))
        yield _gated("slack mode", {"slack", "server"}, problems, lambda: _slack_mode(settings))
    else:
        yield Check("slack", OK, "not configured (SLACK_BOT_TOKEN unset): `sitrep start` runs a local chat")
    if settings.use_llm or settings.openai_base_url or _blocked({"llm"}, problems):
        yield _gated("llm", {"llm"}, problems, _llm(settings))
    else:
        yield Check("llm", OK, "not configured (OPENAI_API_KEY unset): extractive answers")
    yield _gated("digest", {"digest", "slack"}, problems, lambda: _digest(settings))
    if unreachable:
        yield Check("feeds", SKIP, "fix the database first")
    else:
        yield _gated("feeds", {"core", "feeds"}, problems, lambda: _feeds(settings))
