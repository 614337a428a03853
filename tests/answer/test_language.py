"""A question in another language about English articles: answered through the model when there is one,
otherwise a plain reply that the sources are English, never "the articles don't cover it"."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.answer.engine import Engine
from bot.answer.language import language_of
from bot.answer.llm import LLMClient
from bot.cli.chat import run_chat
from bot.settings import Settings
from retrieval.corpus import Corpus
from retrieval.embeddings import MiniLMEmbedding
from tests.answer.test_extractive import helmand_corpus
from tests.openai_server import OpenAIServer, Reply


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("¿Cuántas personas murieron en Itaewon?", "Spanish"),
        ("¿Qué dijo el presidente sobre el accidente?", "Spanish"),
        ("چند نفر در حادثه هلیکوپتر کشته شدند؟", "Persian"),
        ("كم عدد القتلى في هلمند؟", "Arabic"),
        ("Combien de personnes sont mortes dans l'accident ?", "French"),
        ("Wie viele Menschen sind bei dem Absturz gestorben?", "German"),
        ("Сколько человек погибло?", "Russian"),
        ("How many people died when the helicopters crashed?", None),
        ("What did Lula da Silva say about the election in Brazil?", None),
        ("What did the Los Angeles police say about El Niño?", None),
        ("Nawa?", None),
    ],
)
def test_language_of(text: str, language: str | None) -> None:
    assert language_of(text) == language


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbedding) -> Iterator[Corpus]:
    with helmand_corpus(tmp_path_factory.mktemp("helmand-language"), embedder) as built:
        yield built


@pytest.mark.parametrize("question", ["¿Cuántas personas murieron en el accidente de helicópteros en Nawa?",
                                      "چند نفر در سقوط هلیکوپترها در ناوه کشته شدند؟"])
def test_without_a_model_the_reply_says_the_sources_are_english(corpus: Corpus, tmp_path: Path,
                                                                 question: str) -> None:
    answer = Engine(Settings(data_dir=tmp_path, answer_mode="extractive").llm, corpus).ask(question)
    assert answer.abstained and not answer.citations
    assert "don't cover" not in answer.answer
    assert "articles are in English" in answer.answer and "ask again in English" in answer.answer
    assert ("Spanish" if "¿" in question else "Persian") in answer.answer


def test_chat_in_spanish_without_a_model(corpus: Corpus, tmp_path: Path) -> None:
    out = io.StringIO()
    run_chat(Engine(Settings(data_dir=tmp_path, answer_mode="extractive").llm, corpus),
             io.StringIO("¿Cuántas personas murieron en Nawa?\n"), out)
    assert "looks like it is in Spanish" in out.getvalue() and "don't cover" not in out.getvalue()


def test_with_a_model_the_question_is_answered_from_english_sources_in_its_language(
        corpus: Corpus, tmp_path: Path) -> None:
    with OpenAIServer() as server:
        settings = Settings(data_dir=tmp_path, openai_api_key="sk-test", openai_base_url=server.base_url,
                            llm_model="test-model", answer_mode="llm", llm_max_retries=0)
        server.push(
            Reply(text="How many people died when the helicopters crashed in Nawa?"),
            Reply(respond=lambda request: "Two helicopters crashed in Nawa, killing at least nine people [{}].".format(
                re.search(r'<source id="(\d+)"[^>]*>\n[^<]*killing at least nine', request.content("user")).group(1))),
            # The English answer is the model's sentence and the extractive sentences it leaves out (the other
            # outlets' figures): the translation keeps every marker of it.
            Reply(respond=lambda request: "Dos helicópteros se estrellaron en Nawa y murieron al menos nueve personas "
                  + "".join(re.findall(r"\[\d+\]", request.content("user").split("Text:", 1)[1])) + "."),
        )
        answer = Engine(settings.llm, corpus, llm=LLMClient(settings.llm)).ask(
            "¿Cuántas personas murieron en el accidente de helicópteros en Nawa?")
        requests = server.chat_requests()
    assert len(requests) == 3
    assert "into English" in requests[0].content("user") and "¿Cuántas personas" in requests[0].content("user")
    assert "Question: How many people died when the helicopters crashed in Nawa?" in requests[1].content("user")
    translate = requests[2].content("user")
    assert "into Spanish" in translate and "killing at least nine people [1]" in translate
    assert answer.answer.startswith("Dos helicópteros se estrellaron en Nawa y murieron al menos nueve personas [1]")
    assert answer.question.startswith("¿Cuántas") and not answer.abstained
    assert answer.citations[0].source == "Kabul Ledger" and "nine" in answer.citations[0].quote
    assert "Translated into Spanish from English sources." in answer.notes


def test_a_translation_that_loses_the_citations_keeps_the_english_answer(corpus: Corpus, tmp_path: Path) -> None:
    with OpenAIServer() as server:
        settings = Settings(data_dir=tmp_path, openai_api_key="sk-test", openai_base_url=server.base_url,
                            llm_model="test-model", answer_mode="llm", llm_max_retries=0)
        server.push(
            Reply(text="How many people died when the helicopters crashed in Nawa?"),
            Reply(respond=lambda request: "Two helicopters crashed in Nawa, killing at least nine people [{}].".format(
                re.search(r'<source id="(\d+)"[^>]*>\n[^<]*killing at least nine', request.content("user")).group(1))),
            Reply(text="Murieron nueve personas."),  # the marker is gone: not shown
        )
        answer = Engine(settings.llm, corpus, llm=LLMClient(settings.llm)).ask("¿Cuántas personas murieron en Nawa?")
    assert answer.answer.startswith("Two helicopters crashed in Nawa, killing at least nine people [1].\n")
    assert any("could not be translated into Spanish" in note for note in answer.notes)
