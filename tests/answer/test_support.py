"""The support check: what an answer sentence may say about the passages it cites."""

from __future__ import annotations

import pytest

from bench.perturbations import SUPPORTED_KINDS, UNSUPPORTED_KINDS, Passage, build
from bot.answer.support import Evidence, answer_facts, check, dates_in, names, number_values
from tests.conftest import fixture_articles

CRASH = (
    "Two Afghan National Army MI-17 helicopters crashed in Nawa district of Helmand early on Wednesday, killing at "
    "least nine people, the Ministry of Defense said. The Taliban did not confirm the attack. UNAMA called on all "
    "parties to protect civilians. More than 5,600 families have fled Lashkargah, and 2.9 million people need aid."
)
EVIDENCE = Evidence([CRASH], ["Helicopters crash in Helmand"], ["2020-10-15T06:00:00+00:00"])


@pytest.mark.parametrize("claim", [
    "Two army helicopters crashed in Nawa, killing nine people.",
    "At least 9 people died when two helicopters crashed in Nawa district.",
    "According to the Ministry of Defence, nine people were killed in the crash in Helmand.",
    "The UN asked all parties to protect civilians.",  # "UN" for UNAMA, "asked" for "called on"
    "The United Nations Assistance Mission called for the protection of civilians.",
    "On 14 October, two helicopters crashed in Nawa.",  # "Wednesday" before the article's date
    "More than 5,600 families fled Lashkargah.",
    "Some 2.9 million people need aid.",
    "The Taliban did not confirm the attack.",
])
def test_paraphrases_of_the_source_are_supported(claim: str) -> None:
    verdict = check(claim, EVIDENCE)
    assert verdict.supported, verdict.reason


@pytest.mark.parametrize(("claim", "reason"), [
    ("Two helicopters crashed in Nawa, killing twelve people.", "figure"),
    ("Two helicopters crashed in Kandahar, killing nine people.", "name"),
    ("NATO said two helicopters crashed in Nawa.", "name"),
    ("Two helicopters crashed in Nawa on 3 October.", "date"),
    ("Two helicopters did not crash in Nawa.", "negation"),
    ("The Taliban confirmed the attack.", "negation"),
    ("The president expressed condolences to the families of the victims.", "content"),
    ("More than 5,600 families returned to Lashkargah after a ceasefire.", "content"),
    ("[1] [2]", "no words"),
])
def test_made_up_claims_are_not(claim: str, reason: str) -> None:
    verdict = check(claim, EVIDENCE)
    assert not verdict.supported and verdict.reason.startswith(reason)


def test_a_name_swapped_in_from_elsewhere_in_the_passage_is_caught() -> None:
    """The Taliban are in the passage, but not in the sentence about who reported the toll."""
    verdict = check("The Taliban said nine people were killed when two helicopters crashed in Nawa.", EVIDENCE)
    assert not verdict.supported


def test_a_claim_may_join_two_neighbouring_sentences_of_one_source() -> None:
    joined = "Two helicopters crashed in Nawa, killing nine people, and the Taliban did not confirm the attack."
    assert check(joined, EVIDENCE).supported


def test_numbers_and_dates_are_read_as_values() -> None:
    assert number_values("nine, twenty-five, 2.9 million, $19 million, 60%, 15th, two dozen, 1,000") == {
        9, 25, 2_900_000, 19_000_000, 60, 15, 24, 1000}
    assert number_values("eight and fifteen; two hundred and five; one of them") == {8, 15, 205}
    assert [d for d, _ in dates_in("on 14 October, Oct. 15, 2020 and 2020-10-16")] == [
        (10, 14, None), (10, 15, 2020), (10, 16, 2020)]


def test_names_skip_a_sentence_s_capitalised_first_word_but_not_a_name_there() -> None:
    assert names("Officials said the UN and President Joe Biden met in Kabul.") == [
        "UN", "President Joe Biden", "Kabul"]
    assert names("Boris Johnson resigned on Thursday.") == ["Boris Johnson", "Thursday"]
    assert names("SHOUTED TEXT HAS NO NAMES") == []


def test_answer_facts_are_what_the_question_did_not_say() -> None:
    question = "Which automaker recalled 2.9 million vehicles this week?"
    assert answer_facts("Ford recalled 2.9 million vehicles [1].", question) == set()  # "Ford" opens the sentence
    assert answer_facts("The automaker was Ford Motor Company [1].", question) == {"Ford Motor Company"}
    assert answer_facts("Recalls of 2.9 million vehicles are common [1].", question) == set()


def test_perturbations_of_the_fixture_articles() -> None:
    """The labelled set the benchmark reports, on this suite's own articles: at least 90% of supported
    sentences kept and 95% of unsupported ones dropped."""
    passages = [Passage(a.text, a.title, a.published.isoformat() if a.published else None, a.source_key)
                for a in fixture_articles()]
    labelled = build(passages, per_passage=3)
    assert {item.kind for item in labelled} >= {"verbatim", "figure changed", "negated", "wrong article"}
    right = {kind: [0, 0] for kind in (*SUPPORTED_KINDS, *UNSUPPORTED_KINDS)}
    for item in labelled:
        verdict = check(item.claim, Evidence([item.passage.text], [item.passage.title], [item.passage.published]))
        right[item.kind][0] += verdict.supported == item.supported
        right[item.kind][1] += 1
    kept = sum(right[k][0] for k in SUPPORTED_KINDS) / sum(right[k][1] for k in SUPPORTED_KINDS)
    dropped = sum(right[k][0] for k in UNSUPPORTED_KINDS) / sum(right[k][1] for k in UNSUPPORTED_KINDS)
    assert kept >= 0.9 and dropped >= 0.95, right


JURY = (
    "A jury found comedian Rex Holloway liable in a civil case brought by Dana Pike. The jury awarded Pike "
    "$500,000 in damages. Pike spoke to reporters outside a Santa Rosa courthouse."
)


@pytest.mark.parametrize(("claim", "swapped"), [
    ("The jury awarded Rex Holloway $500,000 in damages.", "Pike"),  # the defendant for the plaintiff
    ("Pike spoke to reporters outside a Holloway courthouse.", "Santa Rosa"),
])
def test_a_name_written_where_the_sentence_has_another_is_caught(claim: str, swapped: str) -> None:
    """The new name is in the article (and its title), but the sentence holding the claim names someone else
    in that place."""
    verdict = check(claim, Evidence([JURY], ["Rex Holloway found liable in civil case"]))
    assert not verdict.supported and verdict.reason.startswith("name differs") and swapped in verdict.reason


def test_the_same_entity_named_otherwise_is_not_a_swap() -> None:
    evidence = Evidence([JURY], ["Rex Holloway found liable in civil case"])
    assert check("The jury awarded Dana Pike $500,000 in damages.", evidence).supported
    assert check("Holloway was found liable in a civil case brought by Pike.", evidence).supported


def test_numbers_inside_names_are_names_not_figures() -> None:
    source = Evidence(["Children from 6 months are now eligible for the Covid-19 vaccine, the ministry said."])
    assert number_values("the Covid-19 vaccine, MI-17 and F-16 jets, in mid-2020") == {2020}
    assert check("Children from 6 months are now eligible for the Covid-19 vaccine.", source).supported
    assert not check("Children from 19 months are now eligible for the Covid-19 vaccine.", source).supported
    assert not check("Children from 6 months are now eligible for the Covid-45 vaccine.", source).supported


def test_names_that_only_share_initials_or_a_stem_are_different() -> None:
    source = Evidence(["Committee member Dr. Archana Chatterjee said the Ministry of Health agreed."],
                      ["Vaccines approved in California"])
    assert not check("Committee member Dr. Archana California said the Ministry of Health agreed.", source).supported
    austria = Evidence(["Dr. Archana Chatterjee said the Ministry of Health of Austria agreed."])
    assert not check("Dr. Archana Chatterjee said the Ministry of Health of Australia agreed.", austria).supported
    assert check("Dr. Chatterjee said the health ministry agreed.", source).supported
