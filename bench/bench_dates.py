"""Publication dates: sitrep's parser against dateparser, and the dev benchmark's dates through ``sitrep ingest``.

    .venv/bin/python bench/bench_dates.py [--table FILE] [--data DIR] [--ingest] [--repeat 20]

1. Correctness on the real-world table (``tests/fixtures/dates/real_world.jsonl``, each string with its
   expected UTC value or "unknown"): right, wrong (a date that is not the expected one, or any date where
   "unknown" is right) and unknown (no date where one was expected). dateparser is run as a news pipeline
   would (UTC in and out, the declared order as ``DATE_ORDER``) and once more with its strictest settings
   (``STRICT_PARSING``, all three parts required, dates from the past). dateparser is measured when it is
   installed (``pip install dateparser``; it is not a dependency of sitrep).
2. Speed: microseconds per value over the table, after one warm-up pass; import time of each parser in a
   fresh interpreter (``-X importtime``), and dateparser's first call, which loads its language data.
3. The RealTime QA dev weeks (``--data``, default ``../shared/benchmarks/realtimeqa-2022-dev``): every
   article's raw ``publish_date`` (``2022/10/04``, sometimes ``2022/06/12/16:34``) parsed by sitrep against
   the value strptime reads; with ``--ingest``, the articles are written as JSONL records with that raw value
   as ``published``, ingested by ``sitrep ingest`` into a temporary store (the real model, so it takes
   minutes), and each stored document's date compared with it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from retrieval.dating import iso_utc  # noqa: E402
from retrieval.evaluate import read_jsonl  # noqa: E402
from retrieval.loaders.dates import parse_date  # noqa: E402

DEFAULT_TABLE = REPO / "tests" / "fixtures" / "dates" / "real_world.jsonl"
DEFAULT_DATA = REPO.parent / "shared" / "benchmarks" / "realtimeqa-2022-dev"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)  # the table's ingestion moment
Parser = Callable[[object, str | None], datetime | None]


def sitrep_parser(value: object, order: str | None) -> datetime | None:
    return parse_date(value, date_order=order, now=NOW).when


def dateparser_parsers() -> dict[str, Parser]:
    """dateparser as a pipeline would call it, and with its strictest settings; empty when not installed."""
    try:
        import dateparser
    except ImportError:
        return {}
    base = {"TIMEZONE": "UTC", "TO_TIMEZONE": "UTC", "RETURN_AS_TIMEZONE_AWARE": True,
            "RELATIVE_BASE": NOW.replace(tzinfo=None)}
    strict = {**base, "STRICT_PARSING": True, "REQUIRE_PARTS": ["day", "month", "year"], "PREFER_DATES_FROM": "past"}

    def make(settings: dict[str, object]) -> Parser:
        def parse(value: object, order: str | None) -> datetime | None:
            extra = {"DATE_ORDER": order.upper()} if order else {}
            return dateparser.parse(str(value), settings={**settings, **extra})  # type: ignore[arg-type]
        return parse

    return {"dateparser 1.x": make(base), "dateparser strict": make(strict)}


def score(parser: Parser, rows: list[dict[str, object]]) -> tuple[Counter[str], list[str]]:
    counts: Counter[str] = Counter()
    wrong = []
    for row in rows:
        try:
            got = iso_utc(parser(row["value"], row.get("date_order")))  # type: ignore[arg-type]
        except Exception:  # a parser that crashes on a value has not given a date
            got = None
        expected = row["expected"]
        if got == expected:
            counts["right"] += 1
        elif got is None:
            counts["unknown"] += 1
        else:
            counts["wrong"] += 1
            wrong.append(f"{row['value']!r} -> {got} (expected {expected or 'unknown'})")
    return counts, wrong


def speed(parser: Parser, rows: list[dict[str, object]], repeat: int) -> float:
    """Median microseconds per value over ``repeat`` passes of the table, after a warm-up pass."""
    values = [(r["value"], r.get("date_order")) for r in rows]
    per_pass = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        for value, order in values:
            with contextlib.suppress(Exception):
                parser(value, order)  # type: ignore[arg-type]
        per_pass.append((time.perf_counter() - start) / len(values) * 1e6)
    return statistics.median(per_pass[1:])


def import_ms(statement: str, modules: Sequence[str], cumulative: bool) -> float:
    """Import time in ms from ``python -X importtime``: the cumulative time of ``modules[0]``, or the sum of the
    modules' own times (sitrep's parser lives inside a package whose other modules are not the parser)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", statement], capture_output=True, text=True,
                         cwd=REPO, check=True).stderr
    times = {}
    for line in out.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)", line)
        if m:
            times[m.group(3)] = int(m.group(2 if cumulative else 1))
    picked = modules[:1] if cumulative else modules
    return sum(times.get(name, 0) for name in picked) / 1000


def first_call_ms() -> float | None:
    code = ("import time, dateparser; t = time.perf_counter(); dateparser.parse('Oct 4, 2022'); "
            "print((time.perf_counter() - t) * 1000)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    return float(done.stdout) if done.returncode == 0 else None


# -- RealTime QA ------------------------------------------------------------------------------------------
def benchmark_dates(data: Path) -> dict[str, tuple[str, str, str]]:
    """url -> (week, raw publish_date, text) for every article with text, the first record with a date winning."""
    found: dict[str, tuple[str, str, str]] = {}
    for path in sorted(data.glob("*_g*.jsonl")):
        week = path.name[:8]
        for _, obj in read_jsonl(path):
            for result in obj.get("search_result") or []:
                url, text = result.get("url"), str(result.get("text") or "").strip()
                raw = result.get("publish_date")
                if not url or not text:
                    continue
                if url not in found or (not found[url][1] and raw):
                    found[url] = (week, str(raw or ""), text)
    return found


def expected_date(raw: str) -> str | None:
    """The benchmark's own format read with strptime, independently of sitrep."""
    for fmt in ("%Y/%m/%d/%H:%M", "%Y/%m/%d"):
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=UTC).isoformat()
        except ValueError:
            continue
    return None


def compare(found: dict[str, tuple[str, str, str]], dated: dict[str, str | None]) -> dict[str, Counter[str]]:
    weeks: dict[str, Counter[str]] = {}
    for url, (week, raw, _) in found.items():
        expected, got = expected_date(raw), dated.get(url)
        tally = weeks.setdefault(week, Counter())
        tally["articles"] += 1
        tally["no date in the data" if expected is None else "equal" if got == expected else
              "unknown" if got is None else "wrong"] += 1
    return weeks


def ingest(found: dict[str, tuple[str, str, str]]) -> tuple[dict[str, str | None], dict[str, str | None], float]:
    """Ingest the articles with ``sitrep ingest`` into a temporary store. Returns url -> the date stored for that
    source, url -> the date of the document it belongs to (what search shows; articles with the same text
    share one document), and the seconds it took."""
    with tempfile.TemporaryDirectory() as tmp:
        records = Path(tmp) / "realtimeqa.jsonl"
        with records.open("w", encoding="utf-8") as fh:
            for n, (url, (_, raw, text)) in enumerate(found.items()):
                fh.write(json.dumps({"id": str(n), "url": url, "text": text, "published": raw or None}) + "\n")
        env = {"SITREP_DATA_DIR": str(Path(tmp) / "data"), "PATH": "/usr/bin:/bin", "SITREP_LOG_LEVEL": "warning"}
        start = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "sitrep"), "ingest", str(records), "--json"], env=env,
                       check=False, capture_output=True, cwd=tmp)
        seconds = time.perf_counter() - start
        conn = sqlite3.connect(Path(tmp) / "data" / "state.db")
        rows = conn.execute("SELECT s.url, s.published, d.published FROM sources s JOIN documents d"
                            " ON d.doc_id = s.doc_id").fetchall()
        conn.close()
    return {r[0]: r[1] for r in rows}, {r[0]: r[2] for r in rows}, seconds


def table_rows(tally: dict[str, Counter[str]]) -> list[str]:
    lines = ["| week | articles | date = publish_date | unknown | wrong | no date in the data |",
             "|---|---|---|---|---|---|"]
    total: Counter[str] = Counter()
    for week, c in sorted(tally.items()):
        total.update(c)
        lines.append(f"| {week} | {c['articles']} | {c['equal']} | {c['unknown']} | {c['wrong']} "
                     f"| {c['no date in the data']} |")
    lines.append(f"| all | {total['articles']} | {total['equal']} | {total['unknown']} | {total['wrong']} "
                 f"| {total['no date in the data']} |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--ingest", action="store_true", help="also ingest the benchmark articles (minutes)")
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args(argv)

    rows = [json.loads(line) for line in args.table.read_text(encoding="utf-8").splitlines() if line.strip()]
    parsers: dict[str, Parser] = {"sitrep": sitrep_parser, **dateparser_parsers()}
    print(f"## Real-world date table: {len(rows)} strings, {sum(r['expected'] is None for r in rows)} of them "
          "rightly unknown\n")
    print("| parser | right | wrong | unknown | µs per value |\n|---|---|---|---|---|")
    mistakes = {}
    for name, parser in parsers.items():
        counts, mistakes[name] = score(parser, rows)
        print(f"| {name} | {counts['right']} | {counts['wrong']} | {counts['unknown']} "
              f"| {speed(parser, rows, args.repeat):.0f} |")
    for name, wrong in mistakes.items():
        if wrong:
            print(f"\n{name} wrong ({len(wrong)}):\n" + "\n".join(f"- {w}" for w in wrong))
    parser_modules = ["retrieval.loaders.dates", "retrieval.loaders.datetext", "retrieval.loaders.date_words",
                      "retrieval.loaders.zones", "retrieval.loaders.solar_hijri"]
    own = import_ms("import retrieval.loaders.dates", parser_modules, False)
    print(f"\nimport: sitrep's date modules {own:.1f} ms")
    if len(parsers) > 1:
        first = first_call_ms()
        print(f"import: dateparser {import_ms('import dateparser', ['dateparser'], True):.1f} ms; "
              f"its first parse {first:.0f} ms" if first is not None else "")

    if args.data.is_dir():
        found = benchmark_dates(args.data)
        print(f"\n## RealTime QA dev ({args.data.name}): {len(found)} articles with text\n")
        parsed = {url: iso_utc(parse_date(raw, now=NOW).when) for url, (_, raw, _) in found.items()}
        print("Parser alone:\n\n" + "\n".join(table_rows(compare(found, parsed))))
        if args.ingest:
            by_source, by_document, seconds = ingest(found)
            print(f"\nThrough `sitrep ingest` ({seconds:.0f} s), each article's stored date:\n\n"
                  + "\n".join(table_rows(compare(found, by_source))))
            print("\nThe date of the document each article belongs to (what search shows):\n\n"
                  + "\n".join(table_rows(compare(found, by_document))))
    else:
        print(f"\n(no benchmark data at {args.data}; pass --data)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
