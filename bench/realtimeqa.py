"""Load the RealTime QA benchmark (Kasai et al.) as a retrieval test: articles plus questions with gold URLs.

A week ``W`` is three JSONL files in one folder: ``W_qa.jsonl`` (questions), ``W_gold.jsonl`` (each
question's gold article(s)) and ``W_gcs.jsonl`` (web-search results: hard distractors on the same
topics). The corpus is every article with text in the gold and gcs files, one per URL; the queries are
the questions that have a gold article with text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from retrieval.documents import Article
from retrieval.errors import SourceError
from retrieval.evaluate import read_jsonl

_WEEK_FILE = re.compile(r"^(\d{8})_qa\.jsonl$")


@dataclass(frozen=True)
class Question:
    """One benchmark query: the question sentence and the URLs of its gold article(s)."""

    question_id: str
    question: str
    question_date: datetime | None
    gold_urls: frozenset[str]
    answers: tuple[str, ...] = ()  # the text of the correct choice(s)


@dataclass(frozen=True)
class Benchmark:
    """The articles (one per URL) and the questions of the chosen weeks."""

    weeks: list[str]
    articles: list[Article]
    questions: list[Question]
    skipped_questions: int  # questions whose gold articles all lack text


@dataclass
class _Record:
    text: str
    from_gold: bool
    title: str
    published: datetime | None


def find_weeks(data_dir: Path) -> list[str]:
    """The weeks (``YYYYMMDD``) that have a question file in ``data_dir``, oldest first."""
    if not data_dir.is_dir():
        raise SourceError(str(data_dir), f"{data_dir} is not a folder of RealTime QA week files.")
    return sorted(m.group(1) for p in data_dir.iterdir() if (m := _WEEK_FILE.match(p.name)))


def _date(value: object) -> datetime | None:
    """RealTime QA dates look like ``2022/06/12`` (sometimes with ``/16:34``); anything else is unknown."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value[:10], "%Y/%m/%d").replace(tzinfo=UTC)
    except ValueError:
        return None


def outlet(url: str) -> str:
    """The outlet of a URL as its domain without ``www.``: ``https://www.cnn.com/x`` → ``cnn.com``."""
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def _lines(path: Path) -> Iterator[dict[str, object]]:
    for _, obj in read_jsonl(path):
        yield obj


def _results(obj: dict[str, object], path: Path) -> list[dict[str, object]]:
    results = obj.get("search_result") or []
    if not isinstance(results, list):
        raise SourceError(str(path), f"{path}: question {obj.get('question_id')} has no search_result list")
    return [r for r in results if isinstance(r, dict) and isinstance(r.get("url"), str) and r["url"]]


def _correct_choices(obj: dict[str, object]) -> tuple[str, ...]:
    """The text of the choices ``answer`` points at (indexes as strings or numbers)."""
    choices, picks = obj.get("choices"), obj.get("answer")
    if not isinstance(choices, list) or not isinstance(picks, list):
        return ()
    out = []
    for pick in picks:
        try:
            out.append(str(choices[int(str(pick))]).strip())
        except (ValueError, IndexError):
            continue
    return tuple(a for a in out if a)


def _merge(records: dict[str, _Record], url: str, result: dict[str, object], from_gold: bool) -> None:
    """Keep one text per URL: a gold file's text beats a search result's (whose scrape is often an ad
    wall), otherwise the longest; take a title from whichever record has one."""
    text = result.get("text") if isinstance(result.get("text"), str) else ""
    title = str(result.get("title") or "").strip()
    new = _Record(str(text).strip(), from_gold, title, _date(result.get("publish_date")))
    old = records.get(url)
    if old is None:
        records[url] = new
        return
    if new.text and (not old.text or (new.from_gold, len(new.text)) > (old.from_gold, len(old.text))):
        old.text, old.from_gold = new.text, new.from_gold
    old.title = old.title or new.title
    old.published = old.published or new.published


def load_benchmark(data_dirs: Sequence[Path], weeks: Sequence[str] | None = None) -> Benchmark:
    """Read the chosen weeks (default: every week found) from one or more folders."""
    records: dict[str, _Record] = {}
    questions: list[Question] = []
    gold_with_text: dict[str, set[str]] = {}
    found: list[str] = []
    skipped = 0
    for data_dir in data_dirs:
        for week in find_weeks(data_dir):
            if weeks and week not in weeks:
                continue
            found.append(week)
            gold_path, gcs_path = data_dir / f"{week}_gold.jsonl", data_dir / f"{week}_gcs.jsonl"
            for path, from_gold in ((gold_path, True), (gcs_path, False)):
                if not path.is_file():
                    raise SourceError(str(path), f"{path} is missing: week {week} needs _qa, _gold and _gcs files.")
                for obj in _lines(path):
                    for result in _results(obj, path):
                        _merge(records, str(result["url"]), result, from_gold)
                        if from_gold and str(result.get("text") or "").strip():
                            gold_with_text.setdefault(str(obj.get("question_id")), set()).add(str(result["url"]))
            gold_urls = {str(obj.get("question_id")): {str(r["url"]) for r in _results(obj, gold_path)}
                         for obj in _lines(gold_path)}
            for obj in _lines(data_dir / f"{week}_qa.jsonl"):
                qid = str(obj.get("question_id"))
                sentence = str(obj.get("question_sentence") or "").strip()
                if not sentence or qid not in gold_with_text:
                    skipped += 1
                    continue
                questions.append(Question(qid, sentence, _date(obj.get("question_date")),
                                          frozenset(gold_urls.get(qid, set())), _correct_choices(obj)))
    if weeks and (missing := sorted(set(weeks) - set(found))):
        raise SourceError(", ".join(missing), f"No RealTime QA files for week(s) {', '.join(missing)}.")
    if not found:
        where = ", ".join(str(d) for d in data_dirs)
        raise SourceError(where, f"No RealTime QA week files (YYYYMMDD_qa.jsonl) in {where}.")
    articles = [
        Article(text=r.text, source_key=url, title=r.title, url=url, source=outlet(url), published=r.published,
                kind="json")
        for url, r in records.items()
        if r.text
    ]
    return Benchmark(sorted(found), articles, questions, skipped)
