"""When each channel's daily digest is due: schedules from the settings and a TOML file, DST-correct.

Two ways to configure digests (both may be used at once; a channel may appear only once):

* ``SITREP_DIGEST_CHANNEL`` (one channel id, or several separated by commas) posted at
  ``SITREP_DIGEST_TIME`` in ``SITREP_TIMEZONE``;
* ``SITREP_DIGEST_CONFIG`` naming a TOML file with one ``[[digest]]`` table per channel::

      [[digest]]
      channel = "C0123456789"
      time = "07:30"              # optional, default SITREP_DIGEST_TIME
      timezone = "Asia/Kabul"     # optional, default SITREP_TIMEZONE

A wall-clock time that a DST change skips (01:30 on the spring-forward night) fires just after the gap;
one that happens twice (the autumn night) fires at its first occurrence, so a digest is due once a day.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.settings import DigestSettings, check_timezone, parse_hhmm
from retrieval.errors import ConfigError

_FILE_KEYS = {"channel", "time", "timezone"}


@dataclass(frozen=True)
class DigestSchedule:
    """One channel's daily digest: its Slack channel id and local posting time."""

    channel: str
    time: time
    timezone: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def describe(self) -> str:
        return f"{self.channel} at {self.time:%H:%M} {self.timezone}"


def load_schedules(settings: DigestSettings) -> list[DigestSchedule]:
    """Every configured digest schedule; an empty list when no digest is configured.

    Raises ConfigError naming the setting (or the file entry) for a bad time, zone, or duplicate channel.
    """
    schedules = [
        DigestSchedule(channel, settings.time, settings.timezone)
        for channel in _split_channels(settings.channel)
    ]
    if settings.config is not None:
        schedules.extend(_read_config(settings.config, settings))
    seen: set[str] = set()
    for schedule in schedules:
        if schedule.channel in seen:
            raise ConfigError(
                f"Digest channel {schedule.channel} is configured twice (SITREP_DIGEST_CHANNEL / "
                "SITREP_DIGEST_CONFIG); give each channel one schedule."
            )
        seen.add(schedule.channel)
    return schedules


def _split_channels(raw: str | None) -> list[str]:
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


def _read_config(path: Path, settings: DigestSettings) -> list[DigestSchedule]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"SITREP_DIGEST_CONFIG={str(path)!r}: no such file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"SITREP_DIGEST_CONFIG={str(path)!r} cannot be read: {exc}.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"SITREP_DIGEST_CONFIG={str(path)!r} is not valid TOML: {exc}.") from None
    entries = data.get("digest", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"SITREP_DIGEST_CONFIG={str(path)!r}: write each digest as a [[digest]] table.")
    return [_entry(entry, f"SITREP_DIGEST_CONFIG {path} [[digest]] #{i}", settings) for i, entry in
            enumerate(entries, start=1)]


def _entry(entry: dict[str, object], where: str, settings: DigestSettings) -> DigestSchedule:
    unknown = sorted(set(entry) - _FILE_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; use channel, time, timezone.")
    channel = entry.get("channel")
    if not isinstance(channel, str) or not channel.strip() or any(c.isspace() for c in channel.strip()):
        raise ConfigError(f"{where}: channel must be a Slack channel id such as \"C0123456789\".")
    raw_time = entry.get("time")
    if raw_time is None:
        at = settings.time
    elif isinstance(raw_time, time):  # TOML local time, e.g. time = 07:30:00
        at = raw_time.replace(second=0, microsecond=0)
    elif isinstance(raw_time, str):
        at = parse_hhmm(raw_time, f"{where} time")
    else:
        raise ConfigError(f"{where} time={raw_time!r} is not a time of day as \"HH:MM\".")
    raw_zone = entry.get("timezone")
    if raw_zone is None:
        zone = settings.timezone
    elif isinstance(raw_zone, str):
        zone = check_timezone(raw_zone, f"{where} timezone")
    else:
        raise ConfigError(f"{where} timezone={raw_zone!r} is not an IANA time zone name.")
    return DigestSchedule(channel.strip(), at, zone)


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("schedule computations need a timezone-aware datetime")


def scheduled_at(schedule: DigestSchedule, day: date) -> datetime:
    """The instant (in UTC) the digest for local date ``day`` is due.

    ``fold=0`` picks the first of two repeated wall-clock times, and for a skipped time the offset in
    force before the change, which lands just after the gap. UTC, because Python never equates an
    ambiguous local datetime with one in another zone (PEP 495).
    """
    return datetime.combine(day, schedule.time, tzinfo=schedule.tz).astimezone(UTC)


def next_run(schedule: DigestSchedule, now: datetime) -> datetime:
    """The first digest time strictly after ``now`` (aware), in UTC."""
    _require_aware(now)
    today = now.astimezone(schedule.tz).date()
    for offset in range(3):
        at = scheduled_at(schedule, today + timedelta(days=offset))
        if at > now:
            return at
    raise AssertionError("a daily time always occurs within two days")


def due_day(schedule: DigestSchedule, now: datetime) -> date:
    """The local date of the most recent digest time at or before ``now`` (aware)."""
    _require_aware(now)
    today = now.astimezone(schedule.tz).date()
    for offset in range(3):
        day = today - timedelta(days=offset)
        if scheduled_at(schedule, day) <= now:
            return day
    raise AssertionError("a daily time always occurs within two days")
