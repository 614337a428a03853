"""Words of news text as the answer engine compares them: stop words, crude stems, number words, and
the everyday synonyms news reports use for one thing."""

from __future__ import annotations

import re

STOPWORDS = frozenset(
    {
        "a", "an", "the", "and", "or", "but", "of", "in", "on", "at", "to", "for", "from", "by", "with",
        "about", "as", "into", "over", "after", "before", "than", "that", "this", "these", "those",
        "there", "their", "they", "them", "it", "its", "is", "are", "was", "were", "be", "been",
        "being", "has", "have", "had", "do", "does", "did", "not", "no", "so", "if", "then", "when",
        "where", "which", "who", "whom", "whose", "what", "how", "why", "while", "also", "said", "says",
        "say", "according", "will", "would", "could", "should", "may", "might", "can", "we", "you",
        "he", "she", "his", "her", "our", "your", "i", "me", "my", "us", "many", "much"
    }
)
# Number words up to twenty and their values: figures are compared as digits (the one list the answer
# engine and the digest share).
NUMBER_WORDS: dict[str, int] = {
    w: i for i, w in enumerate((
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
        "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
    ))
}


def digits(word: str) -> str:
    """A lower-case number word as digits ("nine" -> "9"); any other word unchanged."""
    return str(NUMBER_WORDS[word]) if word in NUMBER_WORDS else word


def terms(text: str) -> set[str]:
    """Content words of ``text``, lower-cased and lightly stemmed; number words become digits."""
    out: set[str] = set()
    for word in re.findall(r"[\w’']+", text.lower()):
        word = word.replace("’", "'").removesuffix("'s")
        if word in STOPWORDS:
            continue
        out.add(stem(digits(word)))
    return out


def stem(word: str) -> str:
    """A deliberately crude suffix stripper: enough to match "helicopters"/"helicopter", "killed"/"kill"."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


# Inflections and everyday synonyms of news reports, merged for word coverage: "How many people died in the
# crash?" is answered by "... collided, killing nine people", "What is UNAMA asking for?" by "UNAMA's call
# to protect civilians". Words for killing or wounding also count as "casualty".
_SYNONYMS = {
    "die": "die died dies dying dead death deaths kill killed killing kills killings fatalities toll",
    "wound": "wound wounded wounding wounds injure injured injuring injuries injury hurt",
    "crash": "crash crashed crashes crashing collide collided collides colliding collision collisions",
    "flee": "flee fled flees fleeing displace displaced displacing displacement",
    "casualty": "casualty casualties",
    "call": "call calls called calling ask asks asked asking urge urges urged urging demand demands demanded "
            "demanding appeal appeals appealed appealing request requests requested requesting",
    "arrest": "arrest arrests arrested arresting detain detains detained detaining detention",
    "attack": "attack attacks attacked attacking assault assaults assaulted",
    "buy": "buy buys bought buying purchase purchases purchased purchasing acquire acquires acquired acquisition",
    "ban": "ban bans banned banning prohibit prohibits prohibited prohibition outlaw outlawed",
    "cost": "cost costs costing price prices priced",
    "resign": "resign resigns resigned resigning resignation",
    "announce": "announce announces announced announcing announcement unveil unveils unveiled",
    "warn": "warn warns warned warning warnings",
    "elect": "elect elects elected electing election elections",
}
CONCEPT = {t: key for key, words in _SYNONYMS.items() for t in terms(words)}
_BROADER = {"die": "casualty", "wound": "casualty"}


def concepts(text: str, *, broader: bool = False) -> set[str]:
    """Content words of ``text`` with inflections and synonyms merged ("killing", "died" -> "die"); with
    ``broader``, a word for killing or wounding also stands for "casualty"."""
    found = {CONCEPT.get(t, t) for t in terms(text)}
    return found | {_BROADER[c] for c in found if c in _BROADER} if broader else found


def one_edit(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by at most one inserted, deleted or replaced character."""
    if abs(len(a) - len(b)) > 1:
        return False
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    return a[i + 1 :] == b[i + 1 :] or a[i + 1 :] == b[i:] or a[i:] == b[i + 1 :]
