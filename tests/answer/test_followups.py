"""Follow-ups keep their subject: "he", "the president", "and the police?" resolved against the conversation
(bot/answer/subject.py), asked back when they can't be; the scripted conversation sets of the look-alike fixtures."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.bench_conversations import DEFAULT_DATA, articles, run_conversations
from bot.answer.engine import Engine
from bot.answer.results import Turn
from bot.answer.rewrite import read_followup
from bot.answer.subject import gender, people, titled, topic
from bot.cli.chat import run_chat
from bot.render.slack import answer_blocks
from bot.settings import Settings
from bot.slack.listeners.messages import cited_titles
from retrieval.corpus import Corpus
from retrieval.embeddings import MiniLMEmbedding
from tests.answer.test_engine_windows import built_corpus

from conftest import ROOT

HOLDOUT = DEFAULT_DATA.parent / "holdout.json"
ITAEWON = "How many people died in the Itaewon crowd crush?"
TOLL = "The number of people killed in the Itaewon crowd crush climbed to 154, officials said [1]."


def conversation(*turns: str | tuple[str, tuple[str, ...]]) -> list[Turn]:
    """Alternating user and assistant turns; an assistant turn may be (answer, sources)."""
    out = []
    for i, turn in enumerate(turns):
        text, sources = (turn, ()) if isinstance(turn, str) else turn
        out.append(Turn("user" if i % 2 == 0 else "assistant", text, sources=sources))
    return out


# -- rules, on hand-written conversations (no store) ---------------------------------------------------------

def test_the_president_is_the_one_the_cited_sources_name() -> None:
    history = conversation(ITAEWON, (TOLL, ("Seoul declares mourning. President Yoon Suk-yeol declared a week "
                                            "of national mourning.",)))
    queries, clarify = read_followup("what did the president say?", history)
    assert clarify is None
    assert queries[0] == "what did President Yoon Suk-yeol say (the Itaewon crowd crush)?"


def test_and_the_police_keeps_the_story() -> None:
    queries, clarify = read_followup("and the police?", conversation(ITAEWON, TOLL))
    assert clarify is None and queries == ["What did the police say (the Itaewon crowd crush)?"]


def test_the_police_after_a_say_question_takes_the_speakers_place() -> None:
    history = conversation("What did President Yoon say about the Itaewon crush?", "Yoon said … [1]")
    (query,), _ = read_followup("and the police?", history)
    assert query.startswith("What did the police say") and "Itaewon" in query and "Yoon" not in query


def test_he_is_the_person_the_previous_question_named() -> None:
    history = conversation("Will Rishi Sunak attend the Cop27 summit?", "Rishi Sunak will consider … [1]")
    (query,), _ = read_followup("what did he say about climate change?", history)
    assert query == "what did Rishi Sunak say about climate change (Cop27)?"


def test_two_people_for_he_ask_which_one() -> None:
    history = conversation("Who won Brazil's presidential election?",
                           "Luiz Inacio Lula da Silva defeated Jair Bolsonaro in Sunday's run-off [1].")
    queries, clarify = read_followup("what did he say?", history)
    assert queries == []
    assert clarify == "Who do you mean by “he”: Luiz Inacio Lula da Silva or Jair Bolsonaro?"


def test_she_rules_out_a_man_of_the_same_surname() -> None:
    answer = ("Paul Pelosi, the husband of House Speaker Nancy Pelosi, was attacked at home [1]. He underwent surgery "
              "[1]. Nancy Pelosi said she and her family were heartbroken [1].")
    history = conversation("What happened to Paul Pelosi?", answer)
    (query,), _ = read_followup("what did she say?", history)
    assert query.startswith("what did Nancy Pelosi say")
    assert gender("Paul Pelosi", answer) == "male" and gender("Nancy Pelosi", answer) == "female"


@pytest.mark.parametrize("question", ["what did he say?", "What did the president say?", "and what did she do?"])
def test_a_first_message_with_no_one_to_refer_to_asks_who(question: str) -> None:
    queries, clarify = read_followup(question, [])
    assert queries == [] and clarify is not None and clarify.startswith("Who do you mean by")


def test_a_first_message_with_its_own_subject_stands() -> None:
    question = "What did the president say about the Itaewon crush?"
    assert read_followup(question, []) == ([question], None)


def test_what_about_another_place_asks_the_previous_question_again() -> None:
    history = conversation("What is the inflation rate in the UK?", "Inflation in the UK rose to 10.1% [1].")
    assert read_followup("what about the US?", history) == (["What is the inflation rate in the US?"], None)


def test_two_presidents_near_the_story_ask_which_one() -> None:
    answer = ("President Joe Biden offered condolences over the Itaewon disaster [1]. President Yoon Suk-yeol "
              "declared national mourning after the Itaewon crush [2].")
    queries, clarify = read_followup("what did the president say?", conversation(ITAEWON, answer))
    assert queries == [] and clarify == "Which president do you mean: Joe Biden or Yoon Suk-yeol?"


def test_reading_names_titles_and_topics() -> None:
    assert people("House Speaker Nancy Pelosi said her husband Paul Pelosi was recovering.") == [
        "Nancy Pelosi", "Paul Pelosi"]
    assert titled("president", "South Korea's president, Yoon Suk-yeol, said … Yoon added …") == ["Yoon Suk-yeol"]
    assert topic(ITAEWON) == "the Itaewon crowd crush"
    assert topic("what did the police say (the Itaewon crowd crush)?") == "the Itaewon crowd crush"


def test_slack_history_reads_the_cited_titles_back_from_an_answer_message() -> None:
    from bot.answer.results import Answer, Citation

    answer = Answer("q", TOLL, [Citation(1, "d", "c", "President Yoon declares mourning & more", "Seoul Daily",
                                         "https://seoul-daily.test/a", "2022-10-31", "q")])
    assert cited_titles(answer_blocks(answer, "answer-1")) == ("President Yoon declares mourning & more",)


# -- the engine on the look-alike store ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def lookalikes(tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbedding) -> Iterator[Corpus]:
    data = json.loads(DEFAULT_DATA.read_text(encoding="utf-8"))
    holdout = json.loads(HOLDOUT.read_text(encoding="utf-8"))
    with built_corpus(tmp_path_factory.mktemp("lookalikes"), embedder,
                      articles=[*articles(data), *articles(holdout)]) as corpus:
        yield corpus


@pytest.fixture
def engine(lookalikes: Corpus, tmp_path: Path) -> Engine:
    return Engine(Settings(data_dir=tmp_path, answer_mode="extractive").llm, lookalikes)


@pytest.mark.parametrize("path", [DEFAULT_DATA, HOLDOUT], ids=["tuning", "holdout"])
def test_scripted_conversations_resolve_their_follow_ups(engine: Engine, path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    results = run_conversations(engine, data)
    right = [r for r in results if r.right]
    assert len(right) / len(results) >= 0.9, [(r.ask, r.why) for r in results if not r.right]
    assert all(r.answer_clean for r in results), [(r.ask, r.answer) for r in results if not r.answer_clean]


def test_chat_keeps_the_subject_and_asks_back_when_it_cannot(engine: Engine) -> None:
    out = io.StringIO()
    lines = [ITAEWON, "what did the president say?", "and the police?", "/new", "Who won Brazil's presidential "
             "election?", "what did he say?"]
    run_chat(engine, io.StringIO("".join(f"{line}\n" for line in lines)), out)
    answers = [part.split("\n\nSources:")[0] for part in out.getvalue().split("> ")[1:]]
    assert "Yoon Suk-yeol" in answers[1] and "Biden" not in answers[1] and "Marcos" not in answers[1]
    assert "police" in answers[2].lower() and "Asheville" not in answers[2] and "San Francisco" not in answers[2]
    assert answers[5].startswith("Who do you mean by “he”:") and "Lula" in answers[5] and "Bolsonaro" in answers[5]


@pytest.mark.timeout(360)
def test_chat_in_a_terminal_resolves_and_asks_back(tmp_path: Path, corpus_factory: Callable[..., Corpus]) -> None:
    from tests.cli.test_terminal import terminal

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SITREP_", "SLACK_", "OPENAI_", "CHROMA_"))}
    env |= {"SITREP_DATA_DIR": str(tmp_path / "data"), "TERM": "xterm", "SITREP_ANSWER_MODE": "extractive",
            "PYTHONPATH": str(ROOT)}
    store = corpus_factory(tmp_path / "data", articles(json.loads(DEFAULT_DATA.read_text(encoding="utf-8"))))
    store.close()
    with terminal(tmp_path, env, "chat") as term:
        at = term.expect("\n> ")
        for line, shown in [(ITAEWON, "Sources:"), ("what did the president say?", "Sources:"),
                            ("/new", "(new conversation)"), ("what did he say?", "Who do you mean by")]:
            term.send(line + "\r")
            at = term.expect(shown, start=at + len(line))
            at = term.expect("\n> ", start=at)
        term.send("/quit\r")
        assert term.finish() == 0, term.output
    president = term.output.split("what did the president say?")[1].split("Sources:")[0]
    assert "Yoon Suk-yeol" in president and "Biden" not in president
    assert "Traceback" not in term.output
