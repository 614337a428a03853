"""The subject of a conversation, and follow-ups resolved against it without a language model.

A follow-up leans on what came before: "he", "she", "what did he say?", "the president", "and the
police?", "what about Kabul?". :func:`resolve` reads the earlier questions (each resolved in turn) and
the previous answer with the sources it cited, and rewrites the follow-up into a standalone question:

- "he"/"she"/"him"/"his"/"her" stand for the one person named in the previous question, else in the
  earlier ones, else in the previous answer and its sources (a pronoun after the name, in the
  conversation or in the articles naming the person, tells "he" from "she"). Two or more candidates, or
  none, and the reply asks who is meant instead of guessing.
- "the president", "the prime minister", "the mayor" ... stand for the one person the conversation gives
  that title ("President Yoon Suk-yeol", "Yoon Suk-yeol, the president") and whom the articles about its
  topic name; several, and the reply asks which. With no name, the role stays and the topic is added
  ("what did the president say (the Itaewon crowd crush)?").
- "the police", "the army", "the government" ... keep their words and get the topic added.
- "what about X?" / "and X?" ask the previous question again about X: X takes the place of the
  previous question's name of the same kind, or of its speaker ("what did the president say?" → "and
  the police?" → "what did the police say ...").

The topic is the previous question's place or event ("the Itaewon crowd crush" in "How many people died
in the Itaewon crowd crush?"), carried into every resolved follow-up so that the answer's evidence must
name it too (see :mod:`bot.answer.constraints`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.answer.extractive import entities
from bot.answer.support import TITLES
from bot.answer.words import STOPWORDS, terms

if TYPE_CHECKING:
    from bot.answer.results import Turn

_MALE = frozenset({"he", "him", "his", "himself"})
_FEMALE = frozenset({"she", "her", "hers", "herself"})
_PERSONAL = _MALE | _FEMALE
_CALENDAR = frozenset(
    "january february march april may june july august september october november december monday tuesday "
    "wednesday thursday friday saturday sunday".split()
)
# Titles that name one person; the lower-case form is how a follow-up says it.
PERSON_ROLES = (
    "prime minister", "vice president", "foreign minister", "defence minister", "defense minister",
    "interior minister", "health minister", "finance minister", "president", "chancellor", "premier",
    "minister", "mayor", "governor", "king", "queen", "pope", "senator", "secretary general", "spokesman",
    "spokeswoman", "spokesperson", "police chief", "chief", "leader", "ambassador", "envoy", "ceo",
)
# Groups that stay groups: the follow-up keeps their words and gets the topic.
GROUP_ROLES = (
    "police", "army", "military", "government", "ministry", "authorities", "officials", "firefighters",
    "rescuers", "prosecutors", "court", "opposition", "protesters", "troops", "rebels", "investigators",
    "regulators", "doctors", "hospital", "hospitals", "residents", "families", "victims", "white house",
    "kremlin", "fire department", "fire service", "coast guard",
)
_ROLE_RE = re.compile(
    r"\b(?:the|its|their)\s+(?P<role>" + "|".join(sorted(map(re.escape, PERSON_ROLES), key=len, reverse=True))
    + r")\b(?!\s+(?:of|in|for)\b)(?-i:(?![ \t]+[A-Z]))", re.IGNORECASE)
_GROUP_RE = re.compile(
    r"\bthe\s+(?P<group>" + "|".join(sorted(map(re.escape, GROUP_ROLES), key=len, reverse=True)) + r")\b",
    re.IGNORECASE)
_ORG_WORDS = frozenset(
    "police ministry department party agency council army forces force nations union bank court committee "
    "office service services company inc corp group university association organization organisation "
    "commission government parliament assembly senate congress house guard institute foundation fund "
    "league federation taliban nato reuters cnn bbc".split()
)
# Places news names most often without "in" before them (and the acronyms that are places, not bodies).
PLACES = frozenset(
    "us u.s. usa uk u.k. eu uae drc britain america united states united kingdom england scotland wales "
    "ireland france germany italy spain portugal russia ukraine belarus poland china japan india pakistan "
    "afghanistan iran iraq syria israel gaza lebanon turkey egypt libya sudan ethiopia kenya somalia "
    "nigeria south africa brazil argentina mexico canada australia indonesia philippines vietnam taiwan "
    "south korea north korea korea seoul tokyo beijing moscow kyiv kabul london paris washington "
    "new york california texas florida europe africa asia".split(" ")
) | {"united states", "united kingdom", "south africa", "south korea", "north korea", "new york"}
_EVENT_WORDS = frozenset(
    "storm typhoon hurricane cyclone earthquake flood floods election elections summit war crisis attack "
    "crash crush disaster fire shooting festival cup games olympics conference talks deal".split()
)
_PLACE_AFTER = re.compile(r"\b(?:in|at|near|across|around|from|inside|outside|to)\s+(?:the\s+)?$", re.IGNORECASE)
_TITLE_BEFORE = re.compile(
    r"\b(?:President|Prime\s+Minister|Minister|Mayor|Governor|Chancellor|King|Queen|Senator|Sen\.|Rep\.|"
    r"Mr\.?|Mrs\.?|Ms\.?|Dr\.?|Secretary(?:\s+General)?|Chief|Judge|Gen\.?|Pope|Ambassador|Envoy|Premier|"
    r"Spokesman|Spokeswoman|Spokesperson|Commissioner|Officer|Sheikh)\s+$"
)
_SAID_AFTER = re.compile(r"^\s*(?:,\s*[\w\s'’-]{0,60},\s*)?(?:said|says|told|added|announced|wrote|tweeted)\b")
_SWAP = re.compile(r"^\s*(?:and\s+)?(?:(?:what|how)\s+about\s+)?(?P<subject>.+?)\s*[?.!]*\s*$", re.IGNORECASE)
_SWAP_LEAD = re.compile(r"^\s*(?:and|what about|how about|and what about|and how about|same for)\b", re.IGNORECASE)
_SPEAKER = re.compile(
    r"^(?P<head>\s*what\s+(?:did|does|do|has|have|had)\s+)(?P<who>.+?)(?P<tail>\s+(?:say|said|tell|told|"
    r"announce|write|post|tweet|do)\b.*)$", re.IGNORECASE)
_TOPIC = re.compile(
    r"\b(?:in|about|on|at|of|from|over|after|during|around|near|for|to|regarding)\s+(?P<topic>(?:the\s+)?"
    r"(?:[\w'’-]+\s+){0,3}?[A-Z][\w'’-]*(?:\s+[\w'’-]+){0,3}?)\s*[?.!]*\s*$")
_QUESTION_WORDS = frozenset(
    "how many much what who whom why when where which did does do say said tell told people happened "
    "happen latest number".split()
)


@dataclass(frozen=True)
class Resolution:
    """A follow-up read against its conversation: the standalone ``query`` to search, or, when it can't
    be resolved, ``clarify`` (the question to ask back). ``subject`` names what the query is about."""

    query: str | None
    clarify: str | None = None
    subject: tuple[str, ...] = ()


@dataclass(frozen=True)
class Context:
    """What a follow-up may refer to: the previous standalone question, the previous answer with the
    text of its sources, and the earlier questions."""

    previous: str
    answer: str = ""
    sources: tuple[str, ...] = ()
    earlier: tuple[str, ...] = ()
    # Text of the articles most relevant to a query: who holds a title in the story, whether a name is a
    # "he" or a "she", when the conversation itself doesn't say.
    lookup: Callable[[str], str] | None = None

    @property
    def answer_text(self) -> str:
        return "\n".join([self.answer, *self.sources])


_NAME = re.compile(
    r"(?<![\w'’-])[A-Z][\w'’.-]*(?:[ \t]+(?:(?:da|de|dos|do|van|von|der|bin|al|el|la|le)[ \t]+)?[A-Z][\w'’-]*)*")
_PERSON_TITLES = (TITLES | {"speaker", "secretary", "chancellor", "premier"}) - {"state", "former", "acting", "head"}
_PARTICLES = frozenset({"da", "de", "dos", "do", "van", "von", "der", "bin", "al", "el", "la", "le"})
_STARTERS = STOPWORDS | {"but", "yet", "meanwhile", "however", "officials", "police", "local"}


def names_in(text: str) -> list[str]:
    """Capitalised names in ``text``, also at the start of a sentence (a first word that is a common word,
    "The", "Meanwhile", is left out); month and day names are not names."""
    found: list[str] = []
    for match in _NAME.finditer(text):
        parts = match.group(0).rstrip(".").split()
        while parts and not parts[0].isupper() and (parts[0].lower() in _STARTERS or parts[0].lower() in _CALENDAR):
            parts = parts[1:]
        if parts:
            found.append(" ".join(parts))
    return list(dict.fromkeys(found))


def words(text: str) -> list[str]:
    return re.findall(r"[\w'’]+", text.lower())


def refers_back(question: str) -> bool:
    """Whether ``question`` uses a personal pronoun, a bare title ("the president") or a group word
    ("the police") that needs the conversation to be understood."""
    return bool(_PERSONAL & set(words(question)) or _ROLE_RE.search(question) or _GROUP_RE.search(question))


def kind(name: str, text: str = "") -> str:
    """``person``, ``org`` or ``place`` for a name, by its words and, when ``text`` is given, how the text
    uses it (a title before it or "said" after it makes a person; "in"/"at" before it a place)."""
    lowered = [w.lower().strip(".'’") for w in re.split(r"[\s-]+", name)]
    if name.lower().removeprefix("the ") in PLACES:
        return "place"
    if any(w in _ORG_WORDS for w in lowered) or re.fullmatch(r"[A-Z][A-Z0-9&.]{1,7}s?", name):
        return "org"
    if any(w in _EVENT_WORDS for w in lowered):
        return "event"
    if lowered[0] in TITLES and len(lowered) > 1:
        return "person"
    votes: Counter[str] = Counter()
    for match in re.finditer(re.escape(name), text):
        before, after = text[: match.start()], text[match.end() :]
        if _TITLE_BEFORE.search(before) or _SAID_AFTER.match(after):
            votes["person"] += 1
        elif _PLACE_AFTER.search(before):
            votes["place"] += 1
    if votes:
        return votes.most_common(1)[0][0]
    significant = [w for w in lowered if w not in _PARTICLES]
    return "person" if 2 <= len(significant) <= 4 and all(w[:1].isalpha() for w in lowered) else "place"


def strip_title(name: str) -> str:
    """"President Yoon Suk-yeol" → "Yoon Suk-yeol"."""
    parts = name.split()
    while len(parts) > 1 and parts[0].lower().strip(".") in TITLES:
        parts = parts[1:]
    return " ".join(parts)


def people(text: str) -> list[str]:
    """The people ``text`` names, titles left out, most mentioned first; a surname alone counts towards
    the full name it belongs to."""
    found = []
    for name in names_in(text):
        parts = name.split()
        # "House Speaker Nancy Pelosi", "UK Foreign Secretary James Cleverly": the name after the last title.
        last_title = max((i for i, w in enumerate(parts) if w.lower().strip(".") in _PERSON_TITLES), default=-1)
        if 0 <= last_title < len(parts) - 1:
            found.append(" ".join(parts[last_title + 1 :]))
        elif kind(name, text) == "person":
            found.append(strip_title(name))
    full = [n for n in dict.fromkeys(found) if len(n.split()) >= 2]
    counts: Counter[str] = Counter()
    for name in found:
        owner = name if len(name.split()) > 1 else next((f for f in full if f.split()[-1] == name), name)
        counts[owner] += 1
    return [name for name, _ in counts.most_common()]


def gender(name: str, text: str) -> str | None:
    """"male"/"female" when the sentences naming the person (and the next one) use only "he"/"his" or only
    "she"/"her", or a title says so; None when the text doesn't tell."""
    surname = re.escape(name.split()[-1])
    if re.search(rf"\b(?:Mrs|Ms|Miss|Queen|Princess|Lady)\.?\s+(?:[A-Z][\w'’-]*\s+)*{surname}\b", text):
        return "female"
    if re.search(rf"\b(?:Mr|King|Prince|Sir|Lord)\.?\s+(?:[A-Z][\w'’-]*\s+)*{surname}\b", text):
        return "male"
    sentences = re.split(r"(?<=[.!?])\s+|\n", text)
    # The full name first: "Paul Pelosi" and "Nancy Pelosi" share a surname, not a pronoun. What counts is
    # a pronoun after the name in its sentence, and one opening the next sentence when the name is the
    # subject of its own (among its first words): "Paul Pelosi ... was attacked. He underwent surgery".
    given = name.split()[0]
    namesakes = {m for m in re.findall(rf"([A-Z][\w'’-]+)[ \t]+{surname}\b", text)
                 if m != given and m.lower().strip(".") not in _PERSON_TITLES}
    patterns = [re.escape(name)] if namesakes or len(name.split()) == 1 else [re.escape(name), surname]
    for pattern in patterns:
        male = female = 0
        for i, sentence in enumerate(sentences):
            match = re.search(rf"\b{pattern}\b", sentence)
            if not match:
                continue
            after = words(sentence[match.end() :])
            if len(words(sentence[: match.start()])) <= 2 and i + 1 < len(sentences):
                after += words(sentences[i + 1])[:1]
            male += sum(w in _MALE for w in after)
            female += sum(w in _FEMALE for w in after)
        if male > 2 * female:
            return "male"
        if female > 2 * male:
            return "female"
    return None


def titled(role: str, text: str) -> list[str]:
    """The people ``text`` gives the title ``role``: "President Yoon Suk-yeol", "Yoon Suk-yeol, the
    president", "South Korea's president, Yoon Suk-yeol"; most mentioned first."""
    title = r"\s+".join(re.escape(w) for w in role.split())
    name = r"[A-Z][\w'’-]*(?:[ \t]+[A-Z][\w'’-]*){0,2}"
    patterns = (
        rf"(?<![\w-])(?i:{title})[ \t]+(?P<name>{name})",
        rf"(?P<name>{name}),[ \t]+(?:[\w'’-]+[ \t]+){{0,3}}?(?i:{title})\b",
        rf"(?i:{title}),?[ \t]+(?P<name>{name})",
    )
    counts: Counter[str] = Counter()
    for pattern in patterns:
        for match in re.finditer(pattern, text):
            found = strip_title(match.group("name"))
            if found.split()[0].lower() in TITLES or found.lower() in {"the", "of"}:
                continue
            counts[found] += 1
    # "Yoon" and "Yoon Suk-yeol" are one person: count the surname-only mention towards the full name.
    merged: Counter[str] = Counter()
    for found, n in counts.items():
        owner = next((f for f in counts if f != found and len(f) > len(found) and f.startswith(found)), found)
        merged[owner] += n
    return [n for n, _ in merged.most_common()]


def topic(question: str) -> str:
    """The place or event a question is about: its last phrase after a preposition that names something
    ("the Itaewon crowd crush"), else its names, else its content words. A resolved follow-up carries its
    topic in brackets at the end ("what did the police say (the Itaewon crowd crush)?")."""
    carried = re.search(r"\(([^()]+)\)\s*[?.!]*\s*$", question)
    if carried:
        return carried.group(1).strip()
    match = _TOPIC.search(question)
    if match and not _PERSONAL & set(words(match.group("topic"))):
        found = match.group("topic").strip(" ?.!")
        if kind(found.removeprefix("the ").strip(), question) != "person" or len(found.split()) > 3:
            return found
    names = [n for n in entities(question) if kind(n, question) != "person"]
    if names:
        return " ".join(names)
    content = [w for w in re.findall(r"[\w'’-]+", question) if terms(w) and w.lower() not in _QUESTION_WORDS]
    return " ".join(content[:6])


def key_words(text: str) -> set[str]:
    """:func:`terms` of ``text`` and its acronyms, lower-cased ("US" is a stop word to :func:`terms`)."""
    return terms(text) | {w.lower() for w in re.findall(r"\b[A-Z][A-Z0-9]{1,7}\b", text)}


def _with_topic(question: str, subject: str) -> str:
    """``question`` about ``subject`` too, unless it already names it."""
    if not subject or key_words(subject) <= key_words(question):
        return question
    return f"{question.rstrip(' ?.!')} ({subject})?"


def _replace_span(question: str, start: int, end: int, text: str) -> str:
    return question[:start] + text + question[end:]


def resolve(question: str, context: Context | None) -> Resolution:
    """``question`` as a standalone question given ``context`` (None: the first message)."""
    if context is None:
        return _first_message(question)
    about = topic(context.previous)
    swap = _swap(question, context, about)
    if swap is not None:
        return swap
    resolved = question
    subjects: list[str] = []
    lowered = set(words(question))
    pronouns = lowered & _PERSONAL
    if pronouns and not [n for n in entities(question) if kind(n, question) == "person"]:
        who = _person(pronouns, context)
        if isinstance(who, Resolution):
            return who
        resolved = re.sub(r"\b(?:he|she)\b", who, resolved, count=1, flags=re.IGNORECASE)
        resolved = re.sub(r"\b(?:his|her)\b", f"{who}'s", resolved, count=1, flags=re.IGNORECASE)
        resolved = re.sub(r"\b(?:him|her)\b", who, resolved, count=1, flags=re.IGNORECASE)
        subjects.append(who)
    role = _ROLE_RE.search(resolved)
    if role:
        named = _role_holder(role.group("role").lower(), context, about)
        if isinstance(named, Resolution):
            return named
        if named:
            title = role.group("role").title() if role.group("role").lower() != "ceo" else "CEO"
            resolved = _replace_span(resolved, role.start(), role.end(), f"{title} {named}")
            subjects.append(named)
        elif not about:  # "the president" in a conversation that has no story yet
            return _first_message(question)
        else:
            subjects.append(role.group(0))
    group = _GROUP_RE.search(resolved)
    if group:
        subjects.append(group.group(0))
    if not subjects:  # nothing this module resolves: the caller's heuristic carries the context over
        return Resolution(question, subject=tuple(entities(question)))
    resolved = _with_topic(resolved, about)
    if about:
        subjects.append(about)
    return Resolution(resolved, subject=tuple(subjects))


def _first_message(question: str) -> Resolution:
    """The first message stands alone, unless it is only a pronoun or a bare title with nothing else
    ("what did he say?", "what did the president say?"): then ask who is meant."""
    content = terms(question) - {"say", "said", "tell", "told", "think", "do", "react", "respond"}
    role = _ROLE_RE.search(question)
    pronoun = _PERSONAL & set(words(question))
    if not entities(question) and (pronoun or role):
        rest = content - terms(role.group(0) if role else "")
        if not rest:
            meant = f"“{next(iter(pronoun))}”" if pronoun else f"“the {role.group('role').lower()}”"  # type: ignore[union-attr]
            return Resolution(None, clarify=f"Who do you mean by {meant}? Please name the person (and the "
                                            "story), and I'll look it up in the ingested articles.")
    return Resolution(question, subject=tuple(entities(question)))


def _person(pronouns: set[str], context: Context) -> str | Resolution:
    """The one person "he"/"she" can stand for, or the question to ask back. The previous question is
    read first, then the earlier ones, then the previous answer and its sources; the first of these
    naming someone the pronoun can be (a "she" nearby rules out a "he") decides."""
    wanted = "male" if pronouns & _MALE and not pronouns & _FEMALE else (
        "female" if pronouns & _FEMALE and not pronouns & _MALE else None)
    text = context.answer_text  # the questions' own pronouns tell nothing about anyone's gender
    candidates: list[str] = []
    for source in (context.previous, *reversed(context.earlier), context.answer_text):
        found = people(source)[:4]
        if wanted:
            # Only a pronoun of the other gender rules a candidate out: an unknown one may still be meant.
            found = [c for c in found if _gender(c, text, context) in (wanted, None)]
        if found:
            candidates = found
            break
    pronoun = sorted(pronouns)[0]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        return Resolution(None, clarify=f"Who do you mean by “{pronoun}”? The conversation so far names no one; "
                                        "please name the person.")
    return Resolution(None, clarify=f"Who do you mean by “{pronoun}”: {_either(candidates[:3])}?",
                      subject=tuple(candidates[:3]))


def _gender(name: str, text: str, context: Context) -> str | None:
    """:func:`gender` from the conversation, else from the articles naming the person."""
    found = gender(name, text)
    if found is None and context.lookup is not None:
        found = gender(name, context.lookup(name))
    return found


def bare_say(question: str) -> bool:
    """"what did the UK say?": a "what did X say" without what about, which in a conversation means about
    its story."""
    return bool(re.match(r"^\s*(?:and\s+)?what\s+(?:did|does|has|have|do)\s+[\w\s'’.-]+?\s+(?:say|said|do|"
                         r"announce|tell\s+\w+)\s*[?.!]*\s*$", question, re.IGNORECASE))


def _role_holder(role: str, context: Context, about: str) -> str | Resolution | None:
    """The person the conversation gives the title ``role``: from the previous question, else the
    previous answer and its sources (preferring the one named next to the topic), else the earlier
    questions. None when it names nobody with that title; the question to ask back when several."""
    candidates = titled(role, context.previous)
    if not candidates:
        candidates = titled(role, context.answer_text)
        if len(candidates) > 1 and about:
            near = [c for c in candidates if _near(c, about, context.answer_text)]
            candidates = near or candidates
    if not candidates:
        for question in reversed(context.earlier):
            candidates = titled(role, question)
            if candidates:
                break
    if context.lookup is not None and about:
        # The articles about the topic decide: a holder named earlier who is not named with the topic
        # (Kenya's president after "what about Somalia?") gives way to the one who is.
        text = context.lookup(f"{role} {about}")
        found = [c for c in titled(role, text) if _near(c, about, text, unit=r"\n\n")]
        kept = [c for c in candidates if any(c.split()[-1] in f for f in found)]
        candidates = kept or found
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        return None
    return Resolution(None, clarify=f"Which {role} do you mean: {_either(candidates[:3])}?",
                      subject=tuple(candidates[:3]))


def _near(name: str, about: str, text: str, *, unit: str = r"(?<=[.!?])\s+|\n") -> bool:
    """Whether a sentence of ``text`` (or another ``unit``: passages are split on blank lines) names both
    ``name`` and a word of the topic ``about``."""
    names = [n.lower() for n in names_in(about)]
    if names:  # "Kenya need food aid": the place is what must be near, not "aid"
        return any(name.split()[-1] in s and any(re.search(rf"(?<!\w){re.escape(n)}(?!\w)", s.lower()) for n in names)
                   for s in re.split(unit, text))
    wanted = key_words(about)
    return any(name.split()[-1] in s and wanted & key_words(s) for s in re.split(unit, text))


def _either(names: Sequence[str]) -> str:
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]


def _swap(question: str, context: Context, about: str) -> Resolution | None:
    """"what about X?" / "and X?": the previous question asked again about X, X taking the place of its
    name of the same kind, or of its speaker; None when ``question`` is not one."""
    if not _SWAP_LEAD.match(question) or len(words(question)) > 7:
        return None
    subject = _SWAP.match(question).group("subject")  # type: ignore[union-attr]
    subject = re.sub(r"^(?:and\s+)?(?:(?:what|how)\s+about\s+)", "", subject, flags=re.IGNORECASE).strip()
    if not subject or re.match(r"^(?:what|who|why|how|when|where|did|does|is|are|was|were)\b", subject, re.I):
        return None  # "and what did NATO say?" is a question of its own
    previous = context.previous
    bare = subject.lower().removeprefix("the ").strip()
    speaker = _SPEAKER.match(previous)
    if _PERSONAL & set(words(subject)) or _ROLE_RE.search(f"the {bare}"):
        return resolve(f"What did {subject} say?", context)
    own = names_in(subject)
    if bare in GROUP_ROLES or (speaker and (not own or kind(own[0], previous) in ("person", "org"))):
        resolved = (speaker.group("head") + subject + speaker.group("tail") if speaker
                    else f"What did {subject} say?")
        return Resolution(_with_topic(resolved, about), subject=(subject, about) if about else (subject,))
    names = entities(previous)
    if own and names:
        wanted = kind(own[0], question)
        same = [n for n in names if kind(n, previous) == wanted] or names
        # "what about the US?" after "... in the UK?": the name takes the name's place, not "the US".
        replacement = own[0] if subject.lower().removeprefix("the ").strip() == own[0].lower() else subject
        resolved = previous.replace(same[-1], replacement)
        return Resolution(resolved, subject=(subject,))
    if not own:
        return Resolution(_with_topic(f"What about {subject}?", about), subject=(subject, about))
    return Resolution(f"{previous.rstrip(' ?.!')} — {subject}?", subject=(subject,))


def context_of(history: Sequence[Turn], rewrite: object, lookup: Callable[[str], str] | None = None
               ) -> Context | None:
    """The context for the next message of a conversation: its user questions resolved in order with
    ``rewrite`` (question, Context | None) -> str, and its last answer with that answer's sources."""
    previous: str | None = None
    earlier: list[str] = []
    answer, sources = "", ()
    for turn in history:
        if turn.role == "user":
            if previous is not None:
                earlier.append(previous)
            ctx = Context(previous, answer, sources, tuple(earlier), lookup) if previous is not None else None
            previous = rewrite(turn.text, ctx)  # type: ignore[operator]
            answer, sources = "", ()
        else:
            answer, sources = turn.text, tuple(getattr(turn, "sources", ()) or ())
    if previous is None:
        return None
    return Context(previous, answer, sources, tuple(earlier[-4:]), lookup)
