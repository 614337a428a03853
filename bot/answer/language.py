"""Which language a question is in, cheaply: its script, else its stop words. No model is loaded.

The articles are English and matched with English words and an English embedding model, so a question in
another language can't be matched as it stands: with a language model it is translated, answered from
the English sources and the answer translated back (see :meth:`bot.answer.engine.Engine.ask_stream`); without
one the reply says so plainly rather than claiming the articles don't cover it.
"""

from __future__ import annotations

import re

# Scripts that are not English whatever the words (the Unicode block's first and last code points).
_SCRIPTS: tuple[tuple[str, str, str], ...] = (
    ("Persian", "\u0600", "\u06ff"),  # Arabic script: Persian and Arabic are told apart below
    ("Russian", "\u0400", "\u04ff"),
    ("Greek", "\u0370", "\u03ff"),
    ("Hebrew", "\u0590", "\u05ff"),
    ("Hindi", "\u0900", "\u097f"),
    ("Thai", "\u0e00", "\u0e7f"),
    ("Korean", "\uac00", "\ud7af"),
    ("Japanese", "\u3040", "\u30ff"),
    ("Chinese", "\u4e00", "\u9fff"),
)
_PERSIAN_LETTERS = frozenset("پچژگکی")  # letters Persian has and Arabic does not
# Frequent words of languages written in Latin letters that English text rarely has.
_STOPWORDS: dict[str, frozenset[str]] = {
    "Spanish": frozenset("el la los las del qué que cuántos cuántas cuántas cuál cuáles dónde cuándo por "
                         "para una unos es está están dijo murieron muertos sobre según con pasó y en de".split()),
    "French": frozenset("le la les des du qu'a qu'est quel quelle quels combien où quand est sont une "
                        "pour sur dans avec a été ont dit morts que qui et".split()),
    "German": frozenset("der die das und ist sind wie viele wieviele was wer wo wann nicht ein eine mit "
                        "über für von den dem hat haben sagte tote".split()),
    "Portuguese": frozenset("o os as do da dos das que quantos quantas onde quando é são uma com para "
                            "sobre disse mortos foi e em".split()),
    "Italian": frozenset("il lo gli della delle che quanti quante dove quando è sono una con per su "
                         "detto morti ha hanno".split()),
}
_ENGLISH = frozenset(
    "the a an of in on at to for and or is are was were what who how many much did does do said say "
    "about with from by has have had this that there which when where why it they he she people".split()
)
_LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)


def language_of(text: str) -> str | None:
    """The language of ``text`` when it is clearly not English ("Spanish", "Persian", ...), else None.

    A script other than Latin decides on its own when most letters are in it; Latin text is another
    language when at least two of its words, and more of them than English ones, are that language's
    frequent words ("¿Cuántas personas murieron en Itaewon?")."""
    letters = _LETTERS.findall(text)
    if not letters:
        return None
    for name, first, last in _SCRIPTS:
        share = sum(first <= ch <= last for ch in letters) / len(letters)
        if share >= 0.5:
            if name == "Persian" and not _PERSIAN_LETTERS & set(text):
                return "Arabic"
            return name
    words = re.findall(r"[\w'’]+", text.lower())
    english = sum(w in _ENGLISH for w in words)
    best, hits = None, 0
    for name, vocabulary in _STOPWORDS.items():
        count = sum(w in vocabulary for w in words)
        if count > hits:
            best, hits = name, count
    accents = bool(re.search(r"[¿¡ñáéíóúãõçàèìòùâêîôûäöüß]", text.lower()))
    if best and hits >= 2 and (hits > english or (accents and hits >= english)):
        return best
    return None


def english_only(language: str) -> str:
    """The reply to a question in ``language`` when no language model is configured."""
    return (
        f"This question looks like it is in {language}. The ingested articles are in English, and without a "
        "language model sitrep can only match questions asked in English; please ask again in English."
    )
