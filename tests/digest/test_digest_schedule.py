"""Digest schedules: settings and TOML file parsing, and DST-correct next run times."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest

from bot.digest.schedule import DigestSchedule, due_day, load_schedules, next_run, scheduled_at
from bot.settings import load_settings
from retrieval.errors import ConfigError


def _settings(tmp_path: Path, **env: str):
    return load_settings({"SITREP_DATA_DIR": str(tmp_path), **env})


def test_no_channel_means_no_digest(tmp_path: Path) -> None:
    assert load_schedules(_settings(tmp_path).digest) == []


def test_channel_time_and_zone_from_settings(tmp_path: Path) -> None:
    settings = _settings(tmp_path, SITREP_DIGEST_CHANNEL="C111, C222", SITREP_DIGEST_TIME="07:45",
                         SITREP_TIMEZONE="Asia/Kabul")
    assert load_schedules(settings.digest) == [
        DigestSchedule("C111", time(7, 45), "Asia/Kabul"),
        DigestSchedule("C222", time(7, 45), "Asia/Kabul"),
    ]


def test_config_file_gives_each_channel_its_own_time(tmp_path: Path) -> None:
    config = tmp_path / "digests.toml"
    config.write_text(
        '[[digest]]\nchannel = "C333"\ntime = "06:30"\ntimezone = "Europe/London"\n\n'
        '[[digest]]\nchannel = "C444"\ntime = 18:05:00\n\n'
        '[[digest]]\nchannel = "C555"\n',
        encoding="utf-8",
    )
    settings = _settings(tmp_path, SITREP_DIGEST_CHANNEL="C111", SITREP_DIGEST_CONFIG=str(config),
                         SITREP_TIMEZONE="Asia/Kabul", SITREP_DIGEST_TIME="09:00")
    assert load_schedules(settings.digest) == [
        DigestSchedule("C111", time(9, 0), "Asia/Kabul"),
        DigestSchedule("C333", time(6, 30), "Europe/London"),
        DigestSchedule("C444", time(18, 5), "Asia/Kabul"),
        DigestSchedule("C555", time(9, 0), "Asia/Kabul"),
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[[digest]]\nchannel = "C1"\ntime = "25:00"\n', r"\[\[digest\]\] #1 time='25:00'"),
        ('[[digest]]\nchannel = "C1"\ntimezone = "Mars/Olympus"\n', r"#1 timezone='Mars/Olympus'"),
        ('[[digest]]\nchannel = "C1"\n[[digest]]\nchanel = "C2"\n', r"#2: unknown key\(s\) chanel"),
        ('[[digest]]\ntime = "08:00"\n', r"#1: channel must be"),
        ("[[digest]\nchannel=", r"is not valid TOML"),
        ('[[digest]]\nchannel = "C1"\n[[digest]]\nchannel = "C1"\n', r"C1 is configured twice"),
    ],
)
def test_bad_config_file_names_the_entry(tmp_path: Path, body: str, expected: str) -> None:
    config = tmp_path / "digests.toml"
    config.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError, match=expected) as info:
        load_schedules(_settings(tmp_path, SITREP_DIGEST_CONFIG=str(config)).digest)
    assert "SITREP_DIGEST_CONFIG" in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"SITREP_DIGEST_CONFIG=.*no such file"):
        load_schedules(_settings(tmp_path, SITREP_DIGEST_CONFIG=str(tmp_path / "nope.toml")).digest)


@pytest.mark.parametrize(("name", "value"), [("SITREP_DIGEST_TIME", "8am"), ("SITREP_TIMEZONE", "Europe/Londn")])
def test_bad_setting_names_the_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        _settings(tmp_path, SITREP_DIGEST_CHANNEL="C1", **{name: value})


LONDON_8 = DigestSchedule("C1", time(8, 0), "Europe/London")


def test_next_run_same_day_and_next_day() -> None:
    assert next_run(LONDON_8, datetime(2020, 10, 16, 6, 59, tzinfo=UTC)) == datetime(2020, 10, 16, 7, 0, tzinfo=UTC)
    assert next_run(LONDON_8, datetime(2020, 10, 16, 7, 0, tzinfo=UTC)) == datetime(2020, 10, 17, 7, 0, tzinfo=UTC)


def test_next_run_across_autumn_dst_change() -> None:
    # Clocks go back at 02:00 BST on Sunday 25 Oct 2020: 08:00 local is 07:00 UTC before, 08:00 UTC after.
    saturday = next_run(LONDON_8, datetime(2020, 10, 24, 7, 30, tzinfo=UTC))
    assert saturday == datetime(2020, 10, 25, 8, 0, tzinfo=UTC)
    assert saturday.astimezone(LONDON_8.tz).hour == 8
    # After Saturday's (07:00 UTC) run, Sunday's is 25 hours later.
    assert next_run(LONDON_8, datetime(2020, 10, 24, 7, 0, tzinfo=UTC)) - datetime(2020, 10, 24, 7, 0, tzinfo=UTC) \
        == datetime(2020, 10, 25, 8, 0, tzinfo=UTC) - datetime(2020, 10, 24, 7, 0, tzinfo=UTC)


def test_repeated_and_skipped_wall_times_fire_once() -> None:
    early = DigestSchedule("C1", time(1, 30), "Europe/London")
    # 01:30 happens twice on 25 Oct 2020 (BST then GMT): the first one.
    assert scheduled_at(early, date(2020, 10, 25)) == datetime(2020, 10, 25, 0, 30, tzinfo=UTC)
    assert next_run(early, datetime(2020, 10, 25, 0, 30, tzinfo=UTC)) == datetime(2020, 10, 26, 1, 30, tzinfo=UTC)
    # 01:30 does not exist on 29 Mar 2020 (clocks jump 01:00 -> 02:00): just after the gap, 02:30 BST.
    spring = scheduled_at(early, date(2020, 3, 29))
    assert spring == datetime(2020, 3, 29, 1, 30, tzinfo=UTC)
    assert spring.astimezone(early.tz).strftime("%H:%M %Z") == "02:30 BST"


def test_due_day_is_the_latest_scheduled_date_passed() -> None:
    kabul = DigestSchedule("C1", time(8, 0), "Asia/Kabul")  # UTC+4:30
    assert due_day(kabul, datetime(2020, 10, 16, 3, 30, tzinfo=UTC)) == date(2020, 10, 16)
    assert due_day(kabul, datetime(2020, 10, 16, 3, 29, tzinfo=UTC)) == date(2020, 10, 15)
    with pytest.raises(ValueError):
        due_day(kabul, datetime(2020, 10, 16, 3, 30))
