"""Settings: every problem listed with its variable and fix; a command checks only the sections it uses."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bot.cli.main import COMMAND_SECTIONS, build_parser, command_sections, main
from bot.settings import ALL_SECTIONS, VARIABLES, Settings, load_settings, read_settings, unknown_variables
from retrieval.errors import ConfigError

BAD = {
    "CHROMA_PORT": "abc",
    "SITREP_DIGEST_TIME": "8am",
    "SITREP_TIMEZONE": "Mars/Olympus",
    "SITREP_WORKERS": "0",
    "SLACK_BOT_TOKEN": "xoxp-1234-SECRETPART",
    "SLACK_APP_TOKEN": "app-5678-OTHERSECRET",
}


def test_every_bad_setting_is_reported_with_its_variable_and_a_fix() -> None:
    settings, problems = read_settings(BAD)
    assert [p.variable for p in problems] == ["CHROMA_PORT", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SITREP_WORKERS",
                                              "SITREP_DIGEST_TIME", "SITREP_TIMEZONE"]
    for problem in problems:
        assert problem.message.startswith(problem.variable)
        assert "fix it" in problem.message and "unset it" in problem.message
        assert "SECRETPART" not in problem.message and "OTHERSECRET" not in problem.message
    by_name = {p.variable: p.message for p in problems}
    assert "CHROMA_PORT='abc' is not a whole number (expected 1 to 65535)" in by_name["CHROMA_PORT"]
    assert "default (8000)" in by_name["CHROMA_PORT"]
    assert "must start with xoxb- (it starts with xoxp-)" in by_name["SLACK_BOT_TOKEN"]
    assert "must start with xapp-" in by_name["SLACK_APP_TOKEN"]
    assert "HH:MM" in by_name["SITREP_DIGEST_TIME"] and "IANA time zone" in by_name["SITREP_TIMEZONE"]
    # Invalid values fall back to their defaults, so commands that do not use them still run.
    assert (settings.chroma_port, settings.slack_bot_token, settings.timezone) == (8000, None, "UTC")

    with pytest.raises(ConfigError) as info:
        load_settings(BAD)
    assert str(info.value).startswith("6 settings need fixing:\n  - CHROMA_PORT=")
    assert str(info.value).count("\n  - ") == 6


def test_each_default_is_the_settings_default() -> None:
    settings, problems = read_settings({})
    assert problems == [] and settings == Settings()
    assert {v.attr for v in VARIABLES} <= set(Settings.__dataclass_fields__)


def test_sections_limit_what_is_checked() -> None:
    env = {"SITREP_DIGEST_TIME": "25:00", "SITREP_ANSWER_MODE": "extractive"}
    assert load_settings(env, sections={"core", "store", "llm"}).answer_mode == "extractive"
    with pytest.raises(ConfigError, match=r"^SITREP_DIGEST_TIME='25:00' is not a time of day"):
        load_settings(env, sections={"digest"})


def test_related_settings_are_checked_together() -> None:
    _, problems = read_settings({"SITREP_ANSWER_MODE": "llm"})
    assert [p.variable for p in problems] == ["SITREP_ANSWER_MODE"]
    assert "needs OPENAI_API_KEY (or OPENAI_BASE_URL" in problems[0].message
    assert read_settings({"SITREP_ANSWER_MODE": "llm", "OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"})[1] == []


def test_a_broken_env_file_line_is_a_problem_not_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capfd: pytest.CaptureFixture[str]) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("SITREP_LLM_MODEL=llama3\nthis line is not a setting\nSITREP_TIMEZONE=Asia/Kabul\n")
    monkeypatch.delenv("SITREP_LLM_MODEL", raising=False)
    monkeypatch.delenv("SITREP_TIMEZONE", raising=False)
    settings, problems = read_settings(dotenv_path=dotenv)
    assert (settings.llm_model, settings.timezone) == ("llama3", "Asia/Kabul")
    assert [(p.variable, p.message) for p in problems] == [
        (".env", f"{dotenv} line 2 is not NAME=value; fix or delete that line.")]
    assert capfd.readouterr().err == ""


def test_typos_in_variable_names_are_pointed_out() -> None:
    assert unknown_variables({"SITREP_DATADIR": "x", "SITREP_LLM_MODEL": "y", "PATH": "/bin"}) == [
        "SITREP_DATADIR (did you mean SITREP_DATA_DIR?)"]


@pytest.fixture
def bad_digest_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("OPENAI_API_KEY", "SLACK_BOT_TOKEN", "CHROMA_HOST", "SITREP_ANSWER_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SITREP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SITREP_DIGEST_TIME", "8am")
    return tmp_path


def test_a_bad_digest_setting_blocks_only_the_digest(bad_digest_env: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--json"]) == 0
    assert main(["search", "helicopter"]) == 0
    assert main(["ask", "What happened in Nawa?"]) == 0
    capsys.readouterr()
    assert main(["digest"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sitrep: SITREP_DIGEST_TIME='8am' is not a time of day")


def test_commands_check_their_sections_and_serve_checks_them_all() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(COMMAND_SECTIONS) <= set(commands)
    assert all(set(sections) <= ALL_SECTIONS for sections in COMMAND_SECTIONS.values())
    serve = parser.parse_args(["serve"])
    assert command_sections(serve, Settings()) == ALL_SECTIONS
    assert command_sections(parser.parse_args(["digest", "--post"]), Settings()) >= {"digest", "slack"}
    assert "slack" not in command_sections(parser.parse_args(["start"]), Settings())
    assert command_sections(parser.parse_args(["start"]), Settings(slack_bot_token="xoxb-1")) == ALL_SECTIONS


def test_every_option_of_every_command_is_explained() -> None:
    def unexplained(parser: argparse.ArgumentParser, path: str) -> list[str]:
        missing = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    missing += unexplained(child, f"{path} {name}")
            elif not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
        return missing

    assert unexplained(build_parser(), "sitrep") == []


def test_search_help_explains_k_since_and_until(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "-k N" in out and "how many passages to show (default 8)" in out
    assert "--since WHEN" in out and "24h, 7d" in out and "--until WHEN" in out
