"""``sitrep chat`` and follow-up rewriting, with the extractive engine and against the scripted LLM server."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.answer.engine import Engine
from bot.answer.llm import LLMClient
from bot.answer.results import Turn
from bot.answer.rewrite import heuristic_rewrite, is_followup, search_queries
from bot.cli.chat import run_chat
from bot.runtime import sample_corpus_path
from bot.settings import Settings
from retrieval.corpus import Corpus
from retrieval.embeddings import MiniLMEmbedding
from tests.answer.test_engine_windows import built_corpus
from tests.answer.test_extractive import CRASH_QUESTION, helmand_corpus
from tests.openai_server import OpenAIServer, Reply


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbedding) -> Iterator[Corpus]:
    with helmand_corpus(tmp_path_factory.mktemp("helmand-chat"), embedder) as built:
        yield built


def chat(engine: Engine, lines: list[str]) -> str:
    out = io.StringIO()
    assert run_chat(engine, io.StringIO("".join(f"{line}\n" for line in lines)), out) == 0
    return out.getvalue()


def answers(transcript: str) -> list[str]:
    """The answer texts of a transcript (what follows each prompt, up to its sources)."""
    return [part.split("\n\nSources:")[0].strip() for part in transcript.split("> ")[1:] if part.strip()]


def test_chat_answers_with_sources_and_keeps_follow_up_context(corpus: Corpus, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    engine = Engine(Settings(data_dir=tmp_path, answer_mode="extractive").llm, corpus)
    caplog.set_level(logging.INFO, logger="bot.answer.engine")
    transcript = chat(engine, [CRASH_QUESTION, "", "why did they crash?", "/quit", "never read"])
    assert transcript.startswith("sitrep chat (extractive answers from the ingested articles).")
    first, second = answers(transcript)
    assert "nine" in first and "Nawa" in first
    assert "technical issues" in second
    assert "ask.rewritten" in caplog.text  # the follow-up was searched with the first question's words
    assert re.search(r"^\[1\] .+ — .+, 2020-10-1\d", transcript, re.M)
    assert "never read" not in transcript


def test_a_follow_up_with_its_own_subject_is_answered_about_it(tmp_path_factory: pytest.TempPathFactory,
                                                                embedder: MiniLMEmbedding, tmp_path: Path) -> None:
    with built_corpus(tmp_path_factory.mktemp("sample"), embedder, files=[sample_corpus_path()]) as sample:
        transcript = chat(Engine(Settings(data_dir=tmp_path, answer_mode="extractive").llm, sample),
                          [CRASH_QUESTION, "and what did NATO say?"])
    first, second = answers(transcript)
    assert "nine people were killed" in first
    assert "Stoltenberg" in second and "NATO remains committed" in second
    assert "nine people were killed" not in second


def test_chat_reports_bad_input_and_carries_on(corpus: Corpus, tmp_path: Path) -> None:
    engine = Engine(Settings(data_dir=tmp_path, answer_mode="extractive").llm, corpus)
    transcript = chat(engine, ["?!?", "x" * 50_000, "What did NATO say?"])
    assert "sitrep: The question has no words in it" in transcript
    assert "sitrep: The question is 50,000 characters long" in transcript
    assert "Stoltenberg" in transcript and transcript.endswith("> \n")  # EOF ends the session cleanly


def test_new_conversation_forgets_the_context(corpus: Corpus, tmp_path: Path) -> None:
    engine = Engine(Settings(data_dir=tmp_path, answer_mode="extractive").llm, corpus)
    transcript = chat(engine, [CRASH_QUESTION, "/new", "what about Kandahar?"])
    assert "(new conversation)" in transcript
    assert "don't cover “what about Kandahar?”" in transcript


def test_chat_in_llm_mode_rewrites_follow_ups_with_the_model(corpus: Corpus, tmp_path: Path) -> None:
    with OpenAIServer() as server:
        settings = Settings(data_dir=tmp_path, openai_api_key="sk-test", openai_base_url=server.base_url,
                            llm_model="test-model", answer_mode="llm", llm_max_retries=0)
        server.push(
            Reply(respond=lambda request: "Two helicopters crashed in Nawa, killing at least nine people [{}].".format(
                re.search(r'<source id="(\d+)"[^>]*>\n[^<]*killing at least nine', request.content("user")).group(1))),
            Reply(text="What did NATO say about the helicopter crash in Nawa?"),  # the rewrite
            Reply(respond=lambda request: "NATO said the Taliban must reduce violence [{}].".format(
                re.search(r'<source id="(\d+)"[^>]*>\n[^<]*Stoltenberg said', request.content("user")).group(1))),
        )
        transcript = chat(Engine(settings.llm, corpus), [CRASH_QUESTION, "and what did NATO say?"])
        requests = server.chat_requests()
    # The rewrite asks about NATO *and* Nawa; no article names both, so the model is not asked to answer
    # and the reply says so, with what the articles say about each (bot/answer/constraints.py).
    assert len(requests) == 2
    rewrite_prompt = requests[1].content("user")
    assert "Last message: and what did NATO say?" in rewrite_prompt
    assert f"user: {CRASH_QUESTION}" in rewrite_prompt and "assistant: Two helicopters crashed" in rewrite_prompt
    assert "The ingested articles don't cover NATO and Nawa together." in transcript
    assert re.search(r"• NATO: .*NATO.* \[1\]", transcript) and re.search(r"• Nawa: .*Nawa.* \[2\]", transcript)


def test_model_rewrite_failure_falls_back_to_the_heuristic(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        server.push(Reply(status=500))
        llm = LLMClient(Settings(data_dir=tmp_path, openai_api_key="sk-test", openai_base_url=server.base_url,
                                 llm_max_retries=0).llm)
        history = [Turn("user", "What did Khalilzad say about the violence in Helmand?"), Turn("assistant", "…")]
        assert search_queries("and what did NATO say?", history, llm) == [
            "what did NATO say?", "what did NATO say (Khalilzad Helmand)?"
        ]


@pytest.mark.parametrize(
    ("question", "followup"),
    [("and what did NATO say?", True), ("What about Nawa?", True), ("Why did they crash?", True),
     ("Casualties?", True), ("How many families were displaced from Lashkargah by the fighting?", False)],
)
def test_is_followup(question: str, followup: bool) -> None:
    assert is_followup(question) is followup


@pytest.mark.parametrize(
    ("previous", "question", "expected"),
    [
        ("How many people died in Lashkargah?", "what about Nawa?", "How many people died in Nawa?"),
        ("What did Khalilzad say about the violence in Helmand?", "and what did NATO say?",
         "what did NATO say (Khalilzad Helmand)?"),
        ("How many people died when the helicopters crashed?", "why did they crash?",
         "why did they crash (people died helicopters)?"),
    ],
)
def test_heuristic_rewrite(previous: str, question: str, expected: str) -> None:
    assert heuristic_rewrite(question, previous) == expected


def test_a_follow_up_naming_a_new_subject_is_searched_on_its_own_first() -> None:
    history = [Turn("user", CRASH_QUESTION), Turn("assistant", "At least nine people were killed … [1]")]
    assert search_queries("and what did NATO say?", history) == [
        "what did NATO say?", "what did NATO say (people died helicopters crashed)?"
    ]
    assert search_queries("why did they crash?", history) == ["why did they crash (people died helicopters)?"]
    assert search_queries("what about Nawa?", [Turn("user", "How many people died in Lashkargah?")]) == [
        "How many people died in Nawa?"
    ]


def test_standalone_questions_are_left_alone() -> None:
    history = [Turn("user", "What did NATO say?"), Turn("assistant", "NATO said … [1]")]
    question = "How many families were displaced from Lashkargah by the fighting?"
    assert search_queries(question, history) == [question]
    assert search_queries("and why?", []) == ["and why?"]
