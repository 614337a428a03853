"""A verified model answer never says less than the extractive answer: what it leaves out follows it."""

from __future__ import annotations

from bot.answer.results import Answer, Citation
from bot.answer.shape import problems
from bot.answer.supplement import ALSO, left_out, says, with_supplement

PARK = "Police arrested 31 men at Lakeside Park in Marlow, Vantoria, on Saturday."
PARK_QUESTION = "Where did police arrest 31 men?"


def cited(n: int, article: str, quote: str) -> Citation:
    return Citation(n=n, doc_id=article, chunk_id=f"{article}:0", title=article, source="Test Wire",
                    url=f"https://example.test/{article}", published="2031-05-04T10:00:00+00:00", quote=quote)


def answer(text: str, citations: list[Citation], mode: str = "llm") -> Answer:
    return Answer(question="q", answer=text, citations=citations, mode=mode)


def test_a_true_answer_without_the_asked_place_gets_the_extractive_sentence() -> None:
    model = answer("The arrests were at Lakeside Park. [1]", [cited(1, "park", PARK)])
    extractive = answer(f"{PARK} [1]", [cited(1, "park", PARK)], mode="extractive")
    full = with_supplement(model, extractive, PARK_QUESTION)
    assert full.answer == f"The arrests were at Lakeside Park. [1]\n{ALSO}\n{PARK} [1]"
    assert [c.n for c in full.citations] == [1] and full.mode == "llm" and problems(full) == []


def test_an_answer_giving_the_asked_facts_stands_alone() -> None:
    model = answer("They were arrested at Lakeside Park in Marlow, Vantoria. [1]", [cited(1, "park", PARK)])
    extractive = answer(f"{PARK} [1]", [cited(1, "park", PARK)], mode="extractive")
    assert with_supplement(model, extractive, PARK_QUESTION) is model


def test_a_count_question_only_needs_the_counts() -> None:
    """"How many": the sentence giving the same count is said, a different outlet's count is not."""
    lead = "At least nine people died when the ferry capsized near Port Elda, officials said."
    other = "Harbour Radio gives a different figure: A harbour official said between eight and fifteen died."
    model = answer("Nine people died when the ferry capsized. [1]", [cited(1, "ferry", lead)])
    extractive = answer(f"{lead} [1] {other} [2]", [cited(1, "ferry", lead), cited(2, "radio", other)],
                        mode="extractive")
    full = with_supplement(model, extractive, "How many people died when the ferry capsized?")
    assert full.answer.endswith(f"{ALSO}\n{other} [2]")
    assert [c.doc_id for c in full.citations] == ["ferry", "radio"] and problems(full) == []


def test_sentences_of_other_articles_are_numbered_after_the_models() -> None:
    award = "The Glass Orchard won best play at the Marlow Stage Awards."
    venue = "The ceremony was held at the Vantoria Music Hall in Marlow."
    model = answer("The Glass Orchard won best play. [1]", [cited(1, "award", award)])
    extractive = answer(f"{venue} [1]\n{award} [2]", [cited(1, "venue", venue), cited(2, "award", award)],
                        mode="extractive")
    full = with_supplement(model, extractive, "What won best play at the Marlow Stage Awards?")
    assert full.answer == f"The Glass Orchard won best play. [1]\n{ALSO}\n{venue} [2]"
    assert [(c.n, c.doc_id) for c in full.citations] == [(1, "award"), (2, "venue")] and problems(full) == []


def test_a_repeated_sentence_is_not_added_again() -> None:
    model_text = f"{PARK} [1]"
    assert left_out(model_text, f"{PARK} [1]", "What happened in Marlow?") == []
    assert says(model_text, set(), f"{PARK} [3]", "What happened in Marlow?")


def test_no_extractive_answer_leaves_the_model_answer_as_it_is() -> None:
    model = answer("The arrests were at Lakeside Park. [1]", [cited(1, "park", PARK)])
    abstained = Answer(question="q", answer="Nothing in the sources.", abstained=True)
    assert with_supplement(model, abstained, PARK_QUESTION) is model
    assert with_supplement(model, None, PARK_QUESTION) is model


def test_a_sentence_without_the_asked_kind_of_fact_is_judged_by_its_words() -> None:
    """"When" asks for a date, but "next week" is no figure: the sentence saying it is added unless the
    model's answer says most of its words."""
    sentence = "Officials said the ferry to Port Elda could resume service as soon as next week. [1]"
    question = "When could the ferry to Port Elda resume service?"
    assert not says("The ferry will resume service. [1]", set(), sentence, question)
    assert says("Officials said service could resume as soon as next week. [1]", set(), sentence, question)
