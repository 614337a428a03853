"""The one settings object, read from the environment and a ``.env`` file in the working directory.

Invalid values fail at start-up with one line naming the variable. Secrets are kept out of ``repr``
so a settings object can be logged or printed safely.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from retrieval.errors import ConfigError
from retrieval.fetchguard import ALLOW_SETTING, NOTHING_ALLOWED, FetchAllow, parse_allow

ANSWER_MODES = ("auto", "llm", "extractive")


@dataclass(frozen=True)
class Settings:
    """Every setting sitrep reads. Build it with :func:`load_settings`."""

    data_dir: Path = Path("./sitrep-data")
    chroma_host: str | None = None
    chroma_port: int = 8000
    chroma_collection: str = "sitrep_chunks"
    embedding_model: str = "minilm"

    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    answer_mode: str = "auto"
    llm_timeout: float = 30.0
    llm_max_retries: int = 2
    llm_fallback: str = "extractive"  # when the LLM fails: "extractive" answer, or "error" message
    context_tokens: int = 3000

    slack_bot_token: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_api_url: str = "https://slack.com/api/"
    http_host: str = "0.0.0.0"
    http_port: int = 3000
    allowed_channels: frozenset[str] = frozenset()
    admin_users: frozenset[str] = frozenset()
    summarize_visibility: str = "channel"  # or "private"
    workers: int = 4
    queue_size: int = 64
    user_rate_per_minute: int = 10
    retention_days: int = 90  # stored questions, answers, thread marks and feedback

    digest_channel: str | None = None
    digest_time: time = time(8, 0)
    timezone: str = "UTC"
    digest_config: Path | None = None
    digest_max_late_hours: float = 6.0
    digest_post_empty: bool = True
    feeds: tuple[str, ...] = ()
    feed_poll_minutes: float = 15.0

    fetch_timeout: float = 15.0
    max_fetch_bytes: int = 10 * 1024 * 1024
    max_file_bytes: int = 50 * 1024 * 1024
    fetch_allow: FetchAllow = NOTHING_ALLOWED
    log_level: str = "INFO"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def use_llm(self) -> bool:
        """Whether answers come from the language model (else extractive)."""
        if self.answer_mode == "auto":
            return bool(self.openai_api_key)
        return self.answer_mode == "llm"

    def secrets(self) -> list[str]:
        """The configured secret values, for redaction."""
        return [
            s
            for s in (self.openai_api_key, self.slack_bot_token, self.slack_signing_secret, self.slack_app_token)
            if s
        ]


def _get(env: Mapping[str, str | None], name: str) -> str | None:
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _int(env: Mapping[str, str | None], name: str, default: int, lo: int = 0, hi: int = 1 << 31) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number.") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={value} is out of range ({lo} to {hi}).")
    return value


def _float(env: Mapping[str, str | None], name: str, default: float, lo: float = 0.0) -> float:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number.") from None
    if value < lo:
        raise ConfigError(f"{name}={value} must be at least {lo}.")
    return value


def _bool(env: Mapping[str, str | None], name: str, default: bool) -> bool:
    raw = _get(env, name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} must be true or false.")


def _choice(env: Mapping[str, str | None], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = _get(env, name)
    if raw is None:
        return default
    if raw.lower() not in choices:
        raise ConfigError(f"{name}={raw!r} must be one of: {', '.join(choices)}.")
    return raw.lower()


def _csv(env: Mapping[str, str | None], name: str) -> tuple[str, ...]:
    raw = _get(env, name)
    if raw is None:
        return ()
    return tuple(part.strip() for part in re.split(r"[,\s]+", raw) if part.strip())


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


def _url(env: Mapping[str, str | None], name: str, default: str | None) -> str | None:
    raw = _get(env, name)
    if raw is None:
        return default
    if not re.match(r"^https?://[^\s/]+", raw):
        raise ConfigError(f"{name}={raw!r} is not an http(s) URL.")
    return raw


def _fetch_allow(env: Mapping[str, str | None]) -> FetchAllow:
    try:
        return parse_allow(_csv(env, ALLOW_SETTING))
    except ValueError as exc:
        raise ConfigError(f"{ALLOW_SETTING}: {exc}.") from None


def load_settings(env: Mapping[str, str | None] | None = None, dotenv_path: Path | None = None) -> Settings:
    """Read settings from ``env`` (default: the process environment over ``./.env``)."""
    if env is None:
        file_values = dotenv_values(dotenv_path or Path.cwd() / ".env")
        merged: dict[str, str | None] = {**file_values, **os.environ}
    else:
        merged = dict(env)

    api_url = _url(merged, "SLACK_API_URL", "https://slack.com/api/") or "https://slack.com/api/"
    if not api_url.endswith("/"):
        api_url += "/"
    timezone = check_timezone(_get(merged, "SITREP_TIMEZONE") or "UTC")
    digest_config = _get(merged, "SITREP_DIGEST_CONFIG")
    return Settings(
        data_dir=Path(_get(merged, "SITREP_DATA_DIR") or "./sitrep-data"),
        chroma_host=_get(merged, "CHROMA_HOST"),
        chroma_port=_int(merged, "CHROMA_PORT", 8000, 1, 65535),
        chroma_collection=_get(merged, "SITREP_CHROMA_COLLECTION") or "sitrep_chunks",
        embedding_model=_get(merged, "SITREP_EMBEDDING_MODEL") or "minilm",
        openai_api_key=_get(merged, "OPENAI_API_KEY"),
        openai_base_url=_url(merged, "OPENAI_BASE_URL", None),
        llm_model=_get(merged, "SITREP_LLM_MODEL") or "gpt-4o-mini",
        answer_mode=_choice(merged, "SITREP_ANSWER_MODE", "auto", ANSWER_MODES),
        llm_timeout=_float(merged, "SITREP_LLM_TIMEOUT", 30.0, 0.1),
        llm_max_retries=_int(merged, "SITREP_LLM_MAX_RETRIES", 2, 0, 10),
        llm_fallback=_choice(merged, "SITREP_LLM_FALLBACK", "extractive", ("extractive", "error")),
        context_tokens=_int(merged, "SITREP_CONTEXT_TOKENS", 3000, 300, 1_000_000),
        slack_bot_token=_get(merged, "SLACK_BOT_TOKEN"),
        slack_signing_secret=_get(merged, "SLACK_SIGNING_SECRET"),
        slack_app_token=_get(merged, "SLACK_APP_TOKEN"),
        slack_api_url=api_url,
        http_host=_get(merged, "SITREP_HTTP_HOST") or "0.0.0.0",
        http_port=_int(merged, "SITREP_HTTP_PORT", 3000, 0, 65535),
        allowed_channels=frozenset(_csv(merged, "SITREP_ALLOWED_CHANNELS")),
        admin_users=frozenset(_csv(merged, "SITREP_ADMIN_USERS")),
        summarize_visibility=_choice(merged, "SITREP_SUMMARIZE_VISIBILITY", "channel", ("channel", "private")),
        workers=_int(merged, "SITREP_WORKERS", 4, 1, 64),
        queue_size=_int(merged, "SITREP_QUEUE_SIZE", 64, 1, 10_000),
        user_rate_per_minute=_int(merged, "SITREP_USER_RATE_PER_MINUTE", 10, 1, 10_000),
        retention_days=_int(merged, "SITREP_RETENTION_DAYS", 90, 1, 36_500),
        digest_channel=_get(merged, "SITREP_DIGEST_CHANNEL"),
        digest_time=parse_hhmm(_get(merged, "SITREP_DIGEST_TIME") or "08:00", "SITREP_DIGEST_TIME"),
        timezone=timezone,
        digest_config=Path(digest_config) if digest_config else None,
        digest_max_late_hours=_float(merged, "SITREP_DIGEST_MAX_LATE_HOURS", 6.0, 0.0),
        digest_post_empty=_bool(merged, "SITREP_DIGEST_POST_EMPTY", True),
        feeds=_csv(merged, "SITREP_FEEDS"),
        feed_poll_minutes=_float(merged, "SITREP_FEED_POLL_MINUTES", 15.0, 0.1),
        fetch_timeout=_float(merged, "SITREP_FETCH_TIMEOUT", 15.0, 0.1),
        max_fetch_bytes=_int(merged, "SITREP_MAX_FETCH_BYTES", 10 * 1024 * 1024, 1024),
        max_file_bytes=_int(merged, "SITREP_MAX_FILE_BYTES", 50 * 1024 * 1024, 1024),
        fetch_allow=_fetch_allow(merged),
        log_level=_choice(merged, "SITREP_LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper(),
    )
