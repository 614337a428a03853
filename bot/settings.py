"""The one settings object, read from the environment and a ``.env`` file in the working directory.

Every variable belongs to one section (core, store, fetch, llm, slack, server, digest, feeds), listed
once in :data:`VARIABLES` with its parser; its default is the :class:`Settings` field's default, written
once. Reading never stops at the first bad value: :func:`read_settings` returns the settings (defaults
in place of invalid values) and every problem found, each naming its variable and the fix. A command
then requires only the sections it uses (:func:`require`), so a bad digest setting never blocks
``sitrep ask``; ``sitrep doctor`` lists all problems. Secrets are kept out of ``repr`` and out of every
message, so a settings object or a problem can be logged or printed safely.
"""

from __future__ import annotations

import difflib
import io
import logging
import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, fields
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from dotenv.parser import parse_stream

from retrieval.errors import ConfigError
from retrieval.fetchguard import ALLOW_SETTING, NOTHING_ALLOWED, FetchAllow, parse_allow
from retrieval.statedb import Location, state_location

ANSWER_MODES = ("auto", "llm", "extractive")

# What each section configures, in the order doctor reports them.
SECTIONS: dict[str, str] = {
    "core": "data directory and logging",
    "store": "the article store and its embeddings",
    "fetch": "fetching files, pages and feeds",
    "llm": "LLM answers",
    "slack": "the Slack app",
    "server": "the Slack bot's HTTP server and workers",
    "digest": "the daily digest",
    "feeds": "feed polling",
}
ALL_SECTIONS = frozenset(SECTIONS)


@dataclass(frozen=True)
class LLMSettings:
    """What the answer engine and the chat-model client use (section ``llm``)."""

    api_key: str | None = field(repr=False)
    base_url: str | None
    model: str
    answer_mode: str
    timeout: float
    max_retries: int
    fallback: str  # when the model fails: "extractive" answer, or "error" message
    context_tokens: int

    @property
    def state_location(self) -> Location:
        """The state database: SITREP_DATABASE_URL (PostgreSQL) when set, else ``state.db`` in the data directory."""
        return state_location(self.data_dir, self.database_url)

    @property
    def use_llm(self) -> bool:
        """Whether answers come from the language model (else extractive)."""
        if self.answer_mode == "auto":
            return bool(self.api_key)
        return self.answer_mode == "llm"


@dataclass(frozen=True)
class SlackSettings:
    """What the Slack app uses (sections ``slack`` and ``server``)."""

    bot_token: str | None = field(repr=False)
    signing_secret: str | None = field(repr=False)
    app_token: str | None = field(repr=False)
    api_url: str
    allowed_channels: frozenset[str]
    admin_users: frozenset[str]
    summarize_visibility: str
    http_host: str
    http_port: int
    workers: int
    queue_size: int
    user_rate_per_minute: int
    retention_days: int


@dataclass(frozen=True)
class DigestSettings:
    """What the daily digest's schedule uses (section ``digest``)."""

    channel: str | None
    time: time
    timezone: str
    config: Path | None
    max_late_hours: float
    post_empty: bool


@dataclass(frozen=True)
class FeedSettings:
    """What feed polling uses (section ``feeds``)."""

    feeds: tuple[str, ...]
    poll_minutes: float


@dataclass(frozen=True)
class Settings:
    """Every setting sitrep reads, flat, with each default written once here. Build it with
    :func:`load_settings` (or :func:`read_settings`); components take only their section
    (:attr:`llm`, :attr:`slack`, :attr:`digest`, :attr:`feeds`)."""

    # core
    data_dir: Path = Path("./sitrep-data")
    log_level: str = "INFO"
    database_url: str | None = field(default=None, repr=False)  # PostgreSQL for all state; None: SQLite file
    # store
    chroma_host: str | None = None
    chroma_port: int = 8000
    chroma_collection: str = "sitrep_chunks"
    embedding_model: str = "minilm"
    # llm
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    answer_mode: str = "auto"
    llm_timeout: float = 30.0
    llm_max_retries: int = 2
    llm_fallback: str = "extractive"  # when the LLM fails: "extractive" answer, or "error" message
    context_tokens: int = 3000
    # slack
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_api_url: str = "https://slack.com/api/"
    allowed_channels: frozenset[str] = frozenset()
    admin_users: frozenset[str] = frozenset()
    summarize_visibility: str = "channel"  # or "private"
    # server
    http_host: str = "0.0.0.0"
    http_port: int = 3000
    workers: int = 4
    queue_size: int = 64
    user_rate_per_minute: int = 10
    retention_days: int = 90  # stored questions, answers, thread marks and feedback
    job_lease_seconds: float = 30.0  # a dead replica's unanswered events are taken over after this
    # digest
    digest_channel: str | None = None
    digest_time: time = time(8, 0)
    timezone: str = "UTC"
    digest_config: Path | None = None
    digest_max_late_hours: float = 6.0
    digest_post_empty: bool = True
    # feeds
    feeds: tuple[str, ...] = ()
    feed_poll_minutes: float = 15.0
    # fetch
    fetch_timeout: float = 15.0
    max_fetch_bytes: int = 10 * 1024 * 1024
    max_file_bytes: int = 50 * 1024 * 1024
    fetch_allow: FetchAllow = NOTHING_ALLOWED

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def state_location(self) -> Location:
        """The state database: SITREP_DATABASE_URL (PostgreSQL) when set, else ``state.db`` in the data directory."""
        return state_location(self.data_dir, self.database_url)

    @property
    def use_llm(self) -> bool:
        """Whether answers come from the language model (else extractive)."""
        return self.llm.use_llm

    @property
    def llm(self) -> LLMSettings:
        return LLMSettings(
            api_key=self.openai_api_key, base_url=self.openai_base_url, model=self.llm_model,
            answer_mode=self.answer_mode, timeout=self.llm_timeout, max_retries=self.llm_max_retries,
            fallback=self.llm_fallback, context_tokens=self.context_tokens,
        )

    @property
    def slack(self) -> SlackSettings:
        return SlackSettings(
            bot_token=self.slack_bot_token, signing_secret=self.slack_signing_secret,
            app_token=self.slack_app_token, api_url=self.slack_api_url, allowed_channels=self.allowed_channels,
            admin_users=self.admin_users, summarize_visibility=self.summarize_visibility,
            http_host=self.http_host, http_port=self.http_port, workers=self.workers, queue_size=self.queue_size,
            user_rate_per_minute=self.user_rate_per_minute, retention_days=self.retention_days,
        )

    @property
    def digest(self) -> DigestSettings:
        return DigestSettings(
            channel=self.digest_channel, time=self.digest_time, timezone=self.timezone,
            config=self.digest_config, max_late_hours=self.digest_max_late_hours,
            post_empty=self.digest_post_empty,
        )

    @property
    def feed_settings(self) -> FeedSettings:
        return FeedSettings(feeds=self.feeds, poll_minutes=self.feed_poll_minutes)

    def secrets(self) -> list[str]:
        """The configured secret values, for redaction."""
        return [
            s
            for s in (self.openai_api_key, self.slack_bot_token, self.slack_signing_secret, self.slack_app_token)
            if s
        ]


@dataclass(frozen=True)
class Problem:
    """One bad setting: the variable (or ``.env``), its section, and a message saying what to do."""

    variable: str
    section: str
    message: str


# A parser turns a non-empty raw value into the setting's value, or raises ConfigError saying what is
# expected (the caller adds the variable's name and how to fall back to the default).
Parser = Callable[[str], object]


@dataclass(frozen=True)
class Variable:
    """One environment variable: the Settings attribute it sets, its section and its parser."""

    name: str
    attr: str
    section: str
    parse: Parser = str
    secret: bool = False  # never echoed in a message

    @property
    def default(self) -> object:
        return _DEFAULTS[self.attr]


_DEFAULTS = {f.name: f.default for f in fields(Settings)}


# -- parsers ------------------------------------------------------------------------------------------
def _int(lo: int = 0, hi: int = 1 << 31) -> Parser:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"is not a whole number (expected {lo} to {hi})") from None
        if not lo <= value <= hi:
            raise ConfigError(f"is out of range (expected {lo} to {hi})")
        return value

    return parse


def _float(lo: float = 0.0) -> Parser:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"is not a number (expected {lo:g} or more)") from None
        if not value >= lo:  # also rejects nan
            raise ConfigError(f"must be at least {lo:g}")
        return value

    return parse


def _bool(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError("must be true or false")


def _choice(*choices: str, upper: bool = False) -> Parser:
    def parse(raw: str) -> str:
        if raw.lower() not in choices:
            raise ConfigError(f"must be one of: {', '.join(choices)}")
        return raw.upper() if upper else raw.lower()

    return parse


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in re.split(r"[,\s]+", raw) if part.strip())


def _csv_set(raw: str) -> frozenset[str]:
    return frozenset(_csv(raw))


def _url(raw: str) -> str:
    if not re.match(r"^https?://[^\s/]+", raw) or any(c.isspace() for c in raw):
        raise ConfigError("is not an http(s) URL such as https://example.org/path")
    return raw


def _slack_api_url(raw: str) -> str:
    url = _url(raw)
    return url if url.endswith("/") else url + "/"


def _host(raw: str) -> str:
    if "://" in raw or "/" in raw or any(c.isspace() for c in raw):
        raise ConfigError("must be a host name or IP address only (no http://, port or path)")
    return raw


def _embedding_model(raw: str) -> str:
    if raw in ("minilm", "all-MiniLM-L6-v2", "all-MiniLM-L6-v2-int8") or re.fullmatch(r"openai:\S+", raw):
        return raw
    raise ConfigError("is not known; use minilm, or openai:<model> such as openai:text-embedding-3-small")


def _database_url(raw: str) -> str:
    if not raw.startswith(("postgresql://", "postgres://")):
        raise ConfigError("must be a PostgreSQL URL such as postgresql://sitrep@db.example.org/sitrep "
                          "(leave it unset for the embedded SQLite file in SITREP_DATA_DIR)")
    return raw


def _path(raw: str) -> Path:
    return Path(raw).expanduser()


def _token(prefix: str, kind: str, where: str) -> Parser:
    """A Slack token of one kind; the message shows at most a known prefix, never the token."""

    def parse(raw: str) -> str:
        if any(c.isspace() for c in raw) or raw[:1] in "\"'":
            raise ConfigError(f"contains spaces or quotes; paste the token ({prefix}…) alone, from {where}")
        if not raw.startswith(prefix):
            seen = re.match(r"x(?:ox[abposr]|app)-", raw)
            found = f" (it starts with {seen.group(0)})" if seen else ""
            raise ConfigError(f"is not {kind}: it must start with {prefix}{found}; copy it from {where}")
        return raw

    return parse


def parse_hhmm(raw: str, name: str) -> time:
    """Parse ``HH:MM`` (24-hour) or fail naming the setting."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", raw.strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ConfigError(f"{name}={raw!r} is not a time of day as HH:MM (24-hour), e.g. 08:00.")
    return time(int(match.group(1)), int(match.group(2)))


def check_timezone(raw: str, name: str = "SITREP_TIMEZONE") -> str:
    """Check an IANA zone name or fail naming the setting."""
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{name}={raw!r} is not an IANA time zone such as Asia/Kabul or Europe/London.") from None
    return raw


def _hhmm(raw: str) -> time:
    try:
        return parse_hhmm(raw, "")
    except ConfigError:
        raise ConfigError("is not a time of day as HH:MM (24-hour), e.g. 08:00") from None


def _fetch_allow(raw: str) -> FetchAllow:
    try:
        return parse_allow(_csv(raw))
    except ValueError as exc:
        raise ConfigError(f"is not a list of hosts, addresses or CIDRs ({exc})") from None


def _zone(raw: str) -> str:
    try:
        return check_timezone(raw)
    except ConfigError:
        raise ConfigError("is not an IANA time zone such as Asia/Kabul or Europe/London") from None


_BOT_TOKEN_PAGE = "your Slack app's OAuth & Permissions page (Bot User OAuth Token)"
_APP_TOKEN_PAGE = "your Slack app's Basic Information page (App-Level Tokens, scope connections:write)"

VARIABLES: tuple[Variable, ...] = (
    Variable("SITREP_DATA_DIR", "data_dir", "core", _path),
    Variable("SITREP_DATABASE_URL", "database_url", "core", _database_url),
    Variable("SITREP_LOG_LEVEL", "log_level", "core", _choice("debug", "info", "warning", "error", upper=True)),
    Variable("CHROMA_HOST", "chroma_host", "store", _host),
    Variable("CHROMA_PORT", "chroma_port", "store", _int(1, 65535)),
    Variable("SITREP_CHROMA_COLLECTION", "chroma_collection", "store"),
    Variable("SITREP_EMBEDDING_MODEL", "embedding_model", "store", _embedding_model),
    Variable("SITREP_FETCH_TIMEOUT", "fetch_timeout", "fetch", _float(0.1)),
    Variable("SITREP_MAX_FETCH_BYTES", "max_fetch_bytes", "fetch", _int(1024)),
    Variable("SITREP_MAX_FILE_BYTES", "max_file_bytes", "fetch", _int(1024)),
    Variable(ALLOW_SETTING, "fetch_allow", "fetch", _fetch_allow),
    Variable("OPENAI_API_KEY", "openai_api_key", "llm", secret=True),
    Variable("OPENAI_BASE_URL", "openai_base_url", "llm", _url),
    Variable("SITREP_LLM_MODEL", "llm_model", "llm"),
    Variable("SITREP_ANSWER_MODE", "answer_mode", "llm", _choice(*ANSWER_MODES)),
    Variable("SITREP_LLM_TIMEOUT", "llm_timeout", "llm", _float(0.1)),
    Variable("SITREP_LLM_MAX_RETRIES", "llm_max_retries", "llm", _int(0, 10)),
    Variable("SITREP_LLM_FALLBACK", "llm_fallback", "llm", _choice("extractive", "error")),
    Variable("SITREP_CONTEXT_TOKENS", "context_tokens", "llm", _int(300, 1_000_000)),
    Variable("SLACK_BOT_TOKEN", "slack_bot_token", "slack", _token("xoxb-", "a bot token", _BOT_TOKEN_PAGE), True),
    Variable("SLACK_SIGNING_SECRET", "slack_signing_secret", "slack", secret=True),
    Variable("SLACK_APP_TOKEN", "slack_app_token", "slack", _token("xapp-", "an app-level token", _APP_TOKEN_PAGE),
             True),
    Variable("SLACK_API_URL", "slack_api_url", "slack", _slack_api_url),
    Variable("SITREP_ALLOWED_CHANNELS", "allowed_channels", "slack", _csv_set),
    Variable("SITREP_ADMIN_USERS", "admin_users", "slack", _csv_set),
    Variable("SITREP_SUMMARIZE_VISIBILITY", "summarize_visibility", "slack", _choice("channel", "private")),
    Variable("SITREP_HTTP_HOST", "http_host", "server", _host),
    Variable("SITREP_HTTP_PORT", "http_port", "server", _int(0, 65535)),
    Variable("SITREP_WORKERS", "workers", "server", _int(1, 64)),
    Variable("SITREP_QUEUE_SIZE", "queue_size", "server", _int(1, 10_000)),
    Variable("SITREP_USER_RATE_PER_MINUTE", "user_rate_per_minute", "server", _int(1, 10_000)),
    Variable("SITREP_RETENTION_DAYS", "retention_days", "server", _int(1, 36_500)),
    Variable("SITREP_JOB_LEASE_SECONDS", "job_lease_seconds", "server", _float(1.0)),
    Variable("SITREP_DIGEST_CHANNEL", "digest_channel", "digest"),
    Variable("SITREP_DIGEST_TIME", "digest_time", "digest", _hhmm),
    Variable("SITREP_TIMEZONE", "timezone", "digest", _zone),
    Variable("SITREP_DIGEST_CONFIG", "digest_config", "digest", _path),
    Variable("SITREP_DIGEST_MAX_LATE_HOURS", "digest_max_late_hours", "digest", _float(0.0)),
    Variable("SITREP_DIGEST_POST_EMPTY", "digest_post_empty", "digest", _bool),
    Variable("SITREP_FEEDS", "feeds", "feeds", _csv),
    Variable("SITREP_FEED_POLL_MINUTES", "feed_poll_minutes", "feeds", _float(0.1)),
)
_BY_NAME = {v.name: v for v in VARIABLES}


def _describe_default(value: object) -> str:
    if value in (None, (), frozenset()) or value == NOTHING_ALLOWED:
        return "unset it to leave this off"
    if isinstance(value, time):
        value = f"{value:%H:%M}"
    return f"unset it to use the default ({value})"


def _problem(var: Variable, raw: str, what: str) -> Problem:
    shown = var.name if var.secret else f"{var.name}={raw!r}"
    return Problem(var.name, var.section, f"{shown} {what}; fix it in the environment or .env, or "
                                          f"{_describe_default(var.default)}.")


def _cross_checks(values: Mapping[str, object]) -> list[Problem]:
    """Problems that involve two settings of one section."""
    problems = []
    if values["answer_mode"] == "llm" and not values["openai_api_key"] and not values["openai_base_url"]:
        problems.append(Problem(
            "SITREP_ANSWER_MODE", "llm",
            "SITREP_ANSWER_MODE=llm needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local OpenAI-compatible "
            "server); set one, or use SITREP_ANSWER_MODE=auto or extractive.",
        ))
    return problems


def _read_env(env: Mapping[str, str | None] | None, dotenv_path: Path | None) -> tuple[dict[str, str | None],
                                                                                        list[Problem]]:
    if env is not None:
        return dict(env), []
    path = dotenv_path or Path.cwd() / ".env"
    problems: list[Problem] = []
    file_values: dict[str, str | None] = {}
    if path.is_file():
        try:
            content = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(".env", "core", f"{path} cannot be read ({exc}); fix or remove it."))
        else:
            problems += [
                Problem(".env", "core", f"{path} line {b.original.line} is not NAME=value; fix or delete that line.")
                for b in parse_stream(io.StringIO(content)) if b.error
            ]
            # python-dotenv logs each unparsable line itself; those are reported above instead.
            logging.getLogger("dotenv.main").disabled = True
            file_values = dict(dotenv_values(stream=io.StringIO(content)))
    return {**file_values, **os.environ}, problems


def read_settings(env: Mapping[str, str | None] | None = None,
                  dotenv_path: Path | None = None) -> tuple[Settings, list[Problem]]:
    """Read every setting and collect every problem; never raises for a bad value.

    ``env`` replaces the process environment and ``.env`` (tests). An invalid value is replaced by its
    default in the returned settings, so a command that does not use it can still run.
    """
    merged, problems = _read_env(env, dotenv_path)
    values: dict[str, object] = {}
    for var in VARIABLES:
        raw = (merged.get(var.name) or "").strip()
        values[var.attr] = var.default
        if not raw:
            continue
        try:
            values[var.attr] = var.parse(raw)
        except ConfigError as exc:
            problems.append(_problem(var, raw, str(exc)))
    problems += _cross_checks(values)
    return Settings(**values), problems  # type: ignore[arg-type]


def unknown_variables(env: Mapping[str, str | None] | None = None) -> list[str]:
    """``SITREP_*`` variables sitrep does not read (typos), each with the closest real name if any."""
    names = (env if env is not None else os.environ).keys()
    out = []
    for name in sorted(n for n in names if n.startswith("SITREP_") and n not in _BY_NAME):
        close = difflib.get_close_matches(name, list(_BY_NAME), n=1, cutoff=0.75)
        out.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return out


def format_problems(problems: Collection[Problem]) -> str:
    """One line per problem, introduced by a count when there are several."""
    if len(problems) == 1:
        return next(iter(problems)).message
    return f"{len(problems)} settings need fixing:\n" + "\n".join(f"  - {p.message}" for p in problems)


def require(problems: Collection[Problem], sections: Collection[str] = ALL_SECTIONS) -> None:
    """Raise ConfigError listing every problem in ``sections`` (problems in other sections are ignored)."""
    relevant = [p for p in problems if p.section in sections]
    if relevant:
        raise ConfigError(format_problems(relevant))


def load_settings(env: Mapping[str, str | None] | None = None, dotenv_path: Path | None = None,
                  sections: Collection[str] = ALL_SECTIONS) -> Settings:
    """Read settings from ``env`` (default: the process environment over ``./.env``).

    Raises ConfigError listing every invalid value in ``sections`` (default: all of them).
    """
    settings, problems = read_settings(env, dotenv_path)
    require(problems, sections)
    return settings
