"""Loaders: every file format and bad input, and article URLs against a real local HTTP server."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from retrieval.documents import Article, LoadFailure
from retrieval.loaders import FetchOptions, canonical_url, count_sources, iter_sources, parse_published
from tests.httpfixtures import LOCAL_FETCH, LocalHTTPServer, Route, closed_port_url

from conftest import FIXTURES, ROOT

LOADERS = FIXTURES / "loaders"
MIXED = LOADERS / "mixed"
ARTICLE_HTML = (MIXED / "lashkargah-displaced.html").read_text(encoding="utf-8")
FAST = replace(LOCAL_FETCH, timeout=0.5)


def load(*sources: str | Path, **kwargs: object) -> list[Article | LoadFailure]:
    kwargs.setdefault("options", LOCAL_FETCH)
    return list(iter_sources([str(s) for s in sources], **kwargs))  # type: ignore[arg-type]


def only_article(items: list[Article | LoadFailure]) -> Article:
    assert len(items) == 1 and isinstance(items[0], Article), items
    return items[0]


def only_failure(items: list[Article | LoadFailure]) -> LoadFailure:
    assert len(items) == 1 and isinstance(items[0], LoadFailure), items
    return items[0]


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def make_pdf(pages: Iterable[str], *, title: str | None = None, created: str | None = None) -> bytes:
    """A minimal valid PDF with one text line per line of each page (Helvetica, no compression)."""
    objects: dict[int, str] = {1: "<< /Type /Catalog /Pages 2 0 R >>",
                               3: "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"}
    page_ids = []
    for text in pages:
        escaped = [line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in text.split("\n")]
        stream = "\n".join(["BT", "/F1 11 Tf", "14 TL", "72 720 Td", *(f"({line}) Tj T*" for line in escaped), "ET"])
        content_id, page_id = len(objects) + 2, len(objects) + 3
        objects[content_id] = f"<< /Length {len(stream)} >>\nstream\n{stream if text else ''}\nendstream"
        objects[page_id] = ("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content_id} 0 R >>")
        page_ids.append(page_id)
    objects[2] = f"<< /Type /Pages /Kids [{' '.join(f'{i} 0 R' for i in page_ids)}] /Count {len(page_ids)} >>"
    info = ""
    if title or created:
        fields = (f"/Title ({title}) " if title else "") + (f"/CreationDate ({created})" if created else "")
        objects[len(objects) + 1] = f"<< {fields} >>"
        info = f" /Info {len(objects)} 0 R"
    out = b"%PDF-1.4\n"
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += f"{number} 0 obj\n{objects[number]}\nendobj\n".encode("latin-1")
    xref_at, size = len(out), len(objects) + 1
    out += f"xref\n0 {size}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offsets[n]:010d} 00000 n \n" for n in range(1, size)).encode()
    out += f"trailer\n<< /Size {size} /Root 1 0 R{info} >>\nstartxref\n{xref_at}\n%%EOF\n".encode()
    return out


@pytest.fixture
def server() -> Iterable[LocalHTTPServer]:
    with LocalHTTPServer() as srv:
        yield srv


# ---------------------------------------------------------------- files


def test_txt_keeps_paragraphs_and_gets_a_readable_title() -> None:
    path = MIXED / "helmand-clashes_update.txt"
    article = only_article(load(path))
    assert article.title == "Helmand clashes update"
    assert article.source_key == str(path.resolve())
    assert article.kind == "file" and article.source == "" and article.published is None
    assert article.text.startswith("Fighting continued on the outskirts of Lashkargah")
    assert "overnight.\n\nAid agencies" in article.text


def test_markdown_title_is_its_first_heading(tmp_path: Path) -> None:
    article = only_article(load(MIXED / "nawa-crash.md"))
    assert article.title == "Two army helicopters collide in Nawa, nine dead"
    assert "killing nine people on board" in article.text
    plain = write(tmp_path / "kandahar_highway-closed.md", "No heading here.\n\nThe highway was closed on Monday.\n")
    assert only_article(load(plain)).title == "Kandahar highway closed"


def test_html_file_main_text_and_metadata() -> None:
    article = only_article(load(MIXED / "lashkargah-displaced.html"))
    assert article.kind == "html"
    assert article.title == "Thousands flee Lashkargah as fighting nears city"
    assert article.source == "Helmand Herald"
    assert article.published == datetime(2020, 10, 13, 3, 45, tzinfo=UTC)  # 08:15 at +04:30
    assert "at least 5,000 families had arrived" in article.text
    assert "\nAfghan forces said they had pushed back" in article.text  # one paragraph per line
    assert "Home" not in article.text and "All rights reserved" not in article.text
    assert "<p>" not in article.text


def test_saved_page_links_to_its_canonical_address(tmp_path: Path) -> None:
    canonical = '<link rel="canonical" href="https://helmand-herald.example/2020/10/13/displaced?utm_source=x">'
    path = write(tmp_path / "saved.html", ARTICLE_HTML.replace("</head>", canonical + "</head>"))
    article = only_article(load(path))
    assert (article.url, article.source_key) == ("https://helmand-herald.example/2020/10/13/displaced",
                                                 str(path.resolve()))


def test_sources_may_be_paths() -> None:
    items = list(iter_sources([MIXED / "nawa-crash.md"]))
    assert only_article(items).title.startswith("Two army helicopters")


def test_source_name_replaces_the_outlet_of_everything() -> None:
    items = load(MIXED / "lashkargah-displaced.html", MIXED / "wires.json", source_name="Desk import")
    assert [item.source for item in items if isinstance(item, Article)] == ["Desk import"] * 3


def test_pdf_text_title_and_creation_date(tmp_path: Path) -> None:
    pdf = make_pdf(
        ["Flash Update No. 1: Helmand conflict", "An estimated 35,000 people have been displaced (since 11 October)."],
        title="Afghanistan: Helmand Flash Update", created="D:20201014093000+04'30'",
    )
    article = only_article(load(write(tmp_path / "ocha-flash-1.pdf", pdf)))
    assert article.kind == "pdf"
    assert article.title == "Afghanistan: Helmand Flash Update"
    assert article.published == datetime(2020, 10, 14, 5, 0, tzinfo=UTC)
    assert article.text == (
        "Flash Update No. 1: Helmand conflict\nAn estimated 35,000 people have been displaced (since 11 October)."
    )


def test_pdf_without_metadata_is_titled_by_its_file_name(tmp_path: Path) -> None:
    article = only_article(load(write(tmp_path / "ocha_flash-2.pdf", make_pdf(["Needs remain high in Lashkargah."]))))
    assert article.title == "Ocha flash 2" and article.published is None


def test_pdf_without_text_may_be_a_scanned_image(tmp_path: Path) -> None:
    failure = only_failure(load(write(tmp_path / "scan.pdf", make_pdf([""]))))
    assert "no extractable text" in failure.error and "scanned image" in failure.error


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ((MIXED / "broken.pdf").read_bytes(), "is a broken PDF"),
        (make_pdf(["Good text"])[:300], "is a broken PDF"),
        (b"<html>renamed page</html>", "is not a PDF file"),
    ],
    ids=["garbage", "truncated", "not-a-pdf"],
)
def test_broken_pdf_is_a_failure(tmp_path: Path, content: bytes, expected: str) -> None:
    path = write(tmp_path / "report.pdf", content)
    failure = only_failure(load(path))
    assert failure.source == str(path) and expected in failure.error


@pytest.mark.parametrize(
    "document",
    [
        [{"id": "a1", "text": "Clashes in Nad Ali."}, {"text": "Curfew in Lashkargah."}],
        {"items": [{"id": "a1", "text": "Clashes in Nad Ali."}, {"text": "Curfew in Lashkargah."}]},
        {"records": [{"id": "a1", "text": "Clashes in Nad Ali."}, {"text": "Curfew in Lashkargah."}]},
        {"articles": [{"id": "a1", "text": "Clashes in Nad Ali."}, {"text": "Curfew in Lashkargah."}]},
    ],
    ids=["list", "items", "records", "articles"],
)
def test_json_record_lists(tmp_path: Path, document: object) -> None:
    path = write(tmp_path / "wire.json", json.dumps(document))
    items = load(path)
    assert all(isinstance(item, Article) for item in items)
    assert [(a.source_key, a.text, a.kind) for a in items] == [  # type: ignore[union-attr]
        (f"{path.resolve()}#a1", "Clashes in Nad Ali.", "json"),
        (f"{path.resolve()}#1", "Curfew in Lashkargah.", "json"),
    ]


def test_json_single_record_and_all_fields(tmp_path: Path) -> None:
    record = {"id": 17, "title": "Taliban attack checkpoints", "url": "https://tolo.example/n/1", "source": "TOLOnews",
              "published": "2020-10-12", "text": "Taliban fighters attacked checkpoints.\nOfficials confirmed."}
    article = only_article(load(write(tmp_path / "one.json", json.dumps(record))))
    assert article == Article(text="Taliban fighters attacked checkpoints.\nOfficials confirmed.",
                              source_key=f"{(tmp_path / 'one.json').resolve()}#17", title="Taliban attack checkpoints",
                              url="https://tolo.example/n/1", source="TOLOnews",
                              published=datetime(2020, 10, 12, tzinfo=UTC), kind="json", published_raw="2020-10-12")


def test_sample_corpus_loads() -> None:
    sample = ROOT / "retrieval" / "sample" / "articles.json"
    article = only_article(load(sample))
    assert article.source == "TOLOnews" and article.published == datetime(2020, 10, 15, tzinfo=UTC)
    assert article.source_key == f"{sample.resolve()}#dea670cdc552c457" and "Khalilzad" in article.text


def test_jsonl_bad_line_is_named_and_other_lines_load() -> None:
    path = MIXED / "agency-updates.jsonl"
    items = load(path)
    failures = [item for item in items if isinstance(item, LoadFailure)]
    articles = [item for item in items if isinstance(item, Article)]
    assert [f.source for f in failures] == [f"{path}#L3", f"{path}#L6"]
    assert f"{path} line 3 is not valid JSON" in failures[0].error
    assert f"{path} line 6 has no text" in failures[1].error
    assert [a.source_key.rsplit("#", 1)[1] for a in articles] == ["ocha-1", "ocha-2", "L4"]
    assert articles[2].published == datetime(2020, 10, 16, 6, 0, tzinfo=UTC)


def test_bad_records_are_named_by_index(tmp_path: Path) -> None:
    document = [{"text": "Fine."}, "just a string", {"text": ""}, {"text": 42}, {"id": "x", "text": "One."},
                {"id": "x", "text": "Two."}]
    path = write(tmp_path / "bad.json", json.dumps(document))
    items = load(path)
    assert isinstance(items[0], Article) and isinstance(items[4], Article)
    errors = [item.error for item in items if isinstance(item, LoadFailure)]
    assert errors == [
        f"{path} record [1] is not a JSON object",
        f'{path} record [2] has an empty "text"',
        f'{path} record [3] "text" is not a string: "text" is required',
        f"{path} record [5] repeats id 'x' already used by {path} record [4]",
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('[{"text": "a"},', "is not valid JSON (Expecting value at line 1 column 16)"),
        ('{"text": "a"}\n{"text": "b"}\n', "if it has one record per line, name it .jsonl"),
        ('{"headline": "no text"}', "holds no records"),
        ("[]", "holds an empty list of records"),
    ],
)
def test_unusable_json_file(tmp_path: Path, content: str, expected: str) -> None:
    failure = only_failure(load(write(tmp_path / "feed.json", content)))
    assert expected in failure.error


def test_folder_is_recursive_sorted_and_skips_hidden_and_unsupported() -> None:
    items = load(MIXED)
    names = [Path((item.source_key if isinstance(item, Article) else item.source).split("#")[0]).name
             for item in items]
    assert names == [
        "agency-updates.jsonl", "agency-updates.jsonl", "agency-updates.jsonl", "agency-updates.jsonl",
        "agency-updates.jsonl", "binary.txt", "broken.pdf", "empty.txt", "helmand-clashes_update.txt",
        "lashkargah-displaced.html", "menu-only.html", "nawa-crash.md", "kabul-reaction.txt", "windows-1252.txt",
        "wires.json", "wires.json",
    ]
    failed = {Path(item.source).name: item.error for item in items if isinstance(item, LoadFailure)}
    assert failed == {
        "agency-updates.jsonl#L3": failed["agency-updates.jsonl#L3"],
        "agency-updates.jsonl#L6": failed["agency-updates.jsonl#L6"],
        "binary.txt": f"{MIXED / 'binary.txt'} looks like a binary file, not text",
        "broken.pdf": failed["broken.pdf"],
        "empty.txt": f"{MIXED / 'empty.txt'} is empty",
        "menu-only.html": f"no article text found in {MIXED / 'menu-only.html'}",
        "windows-1252.txt": f"{MIXED / 'windows-1252.txt'} is not UTF-8 text (byte 0x92 at offset 8); "
                            "convert it (e.g. iconv -f cp1252 -t utf-8)",
    }


def test_folder_without_supported_files_is_a_failure(tmp_path: Path) -> None:
    write(tmp_path / "notes.docx", b"PK\x03\x04")
    write(tmp_path / ".hidden" / "a.txt", "hidden")
    failure = only_failure(load(tmp_path))
    assert failure.error.startswith("no supported files (.txt, .md") and str(tmp_path) in failure.error


def test_loading_streams_one_file_at_a_time(tmp_path: Path) -> None:
    first = write(tmp_path / "a.txt", "First story.")
    second = write(tmp_path / "b.txt", "Second story.")
    items = iter_sources([str(tmp_path)])
    assert next(items).source_key == str(first.resolve())  # type: ignore[union-attr]
    second.unlink()  # the folder listing is known, but b.txt has not been read yet
    failure = next(items)
    assert isinstance(failure, LoadFailure) and "no such file" in failure.error
    assert next(items, None) is None


def test_explicit_unsupported_file_and_missing_path(tmp_path: Path) -> None:
    docx = write(tmp_path / "brief.docx", b"PK\x03\x04")
    items = load(docx, tmp_path / "missing.txt", "www.tolonews.com/afghanistan")
    assert [f.error for f in items] == [  # type: ignore[union-attr]
        f"{docx}: unsupported file type '.docx'; sitrep reads .txt, .md, .html, .htm, .pdf, .json, .jsonl",
        f"no such file or folder: {tmp_path / 'missing.txt'}",
        "no such file or folder: www.tolonews.com/afghanistan; if it is a web address, add https:// in front",
    ]


def test_file_over_the_size_cap(tmp_path: Path) -> None:
    path = write(tmp_path / "huge.txt", "Lashkargah. " * 200)
    failure = only_failure(load(path, options=FetchOptions(max_file_bytes=1024)))
    assert failure.error == f"{path} is 2.34 KB, over the 1 KB limit for a file (SITREP_MAX_FILE_BYTES)"


@pytest.mark.parametrize(
    "encoded",
    [
        "Gov’s statement on Lashkargah\r\nSecond line".encode(),
        "\ufeffGov’s statement on Lashkargah\r\nSecond line".encode(),
        "Gov’s statement on Lashkargah\r\nSecond line".encode("utf-16"),
        "Gov’s statement on Lashkargah\r\nSecond line".encode("utf-16-be").join([b"\xfe\xff", b""]),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16-le-bom", "utf-16-be-bom"],
)
def test_accepted_text_encodings(tmp_path: Path, encoded: bytes) -> None:
    article = only_article(load(write(tmp_path / "statement.txt", encoded)))
    assert article.text == "Gov’s statement on Lashkargah\nSecond line"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is empty"),
        (b" \n\t\n", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "looks like a binary file, not text"),
        ("Café in Lashkargah".encode("latin-1"), "is not UTF-8 text (byte 0xe9 at offset 3)"),
    ],
    ids=["zero-bytes", "whitespace", "binary", "latin-1"],
)
def test_unusable_text_files(tmp_path: Path, content: bytes, expected: str) -> None:
    for name in ("story.txt", "story.md", "story.jsonl"):
        path = write(tmp_path / name, content)
        failure = only_failure(load(path))
        assert failure.source == str(path) and failure.error == f"{path} {expected}" + (
            "; convert it (e.g. iconv -f cp1252 -t utf-8)" if "UTF-8" in expected else "")


def test_html_file_in_a_declared_legacy_charset_is_read(tmp_path: Path) -> None:
    html = ARTICLE_HTML.replace('<meta charset="utf-8">', '<meta charset="windows-1252">').replace(
        "provincial council.", "provincial council’s head.")
    article = only_article(load(write(tmp_path / "legacy.html", html.encode("cp1252"))))
    assert "provincial council’s head." in article.text


def test_binary_html_file_is_a_failure(tmp_path: Path) -> None:
    path = write(tmp_path / "page.html", b"\x00\x01\x02garbage\x00")
    assert only_failure(load(path)).error == f"{path} looks like a binary file, not text"


def test_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    assert only_failure(load(fifo)).error == f"{fifo} is not a regular file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path / "secret.txt", "Embargoed until Friday.")
    path.chmod(0)
    assert only_failure(load(path)).error == f"cannot read {path}: permission denied"


# ---------------------------------------------------------------- dates and URLs


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2020-10-14T09:30:00+04:30", datetime(2020, 10, 14, 5, 0, tzinfo=UTC)),
        ("2020-10-14T09:30:00Z", datetime(2020, 10, 14, 9, 30, tzinfo=UTC)),
        ("2020-10-14 09:30", datetime(2020, 10, 14, 9, 30, tzinfo=UTC)),
        ("2020-10-14", datetime(2020, 10, 14, tzinfo=UTC)),
        ("Wed, 14 Oct 2020 09:30:00 GMT", datetime(2020, 10, 14, 9, 30, tzinfo=UTC)),
        ("Wed, 14 Oct 2020 09:30:00 -0400", datetime(2020, 10, 14, 13, 30, tzinfo=UTC)),
        (time.struct_time((2020, 10, 14, 9, 30, 0, 2, 288, 0)), datetime(2020, 10, 14, 9, 30, tzinfo=UTC)),
        (datetime(2020, 10, 14, 9, 30), datetime(2020, 10, 14, 9, 30, tzinfo=UTC)),
        (date(2020, 10, 14), datetime(2020, 10, 14, tzinfo=UTC)),
        (1602667800, datetime(2020, 10, 14, 9, 30, tzinfo=UTC)),
        ("last Tuesday-ish", None),
        ("", None),
        (None, None),
        (True, None),
        ("0001-01-01", None),
    ],
)
def test_parse_published(value: object, expected: datetime | None) -> None:
    assert parse_published(value) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://Tolo.Example:443/en/story?utm_source=tw&id=5&fbclid=abc#comments", "https://tolo.example/en/story?id=5"),
        ("http://tolo.example:8080?utm_medium=x", "http://tolo.example:8080/"),
        ("https://tolo.example/s?q=a%2Fb&gclid=1&ref=", "https://tolo.example/s?q=a%2Fb&ref="),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


# ---------------------------------------------------------------- article URLs


def test_article_url(server: LocalHTTPServer) -> None:
    server.route("/2020/10/13/lashkargah", Route(ARTICLE_HTML))
    given = server.url("/2020/10/13/lashkargah?utm_source=newsletter#top")
    article = only_article(load(given))
    canonical = server.url("/2020/10/13/lashkargah")
    assert (article.kind, article.url, article.source_key) == ("url", canonical, canonical)
    assert (article.title, article.source) == ("Thousands flee Lashkargah as fighting nears city", "Helmand Herald")
    assert article.published == datetime(2020, 10, 13, 3, 45, tzinfo=UTC)
    assert "at least 5,000 families" in article.text
    request = server.requests_to("/2020/10/13/lashkargah")[0]
    assert request.headers["user-agent"] == FetchOptions().user_agent


def test_redirect_keeps_the_given_url_as_key_and_the_final_as_url(server: LocalHTTPServer) -> None:
    server.route("/a", Route.redirect("/b", 301))
    server.route("/b", Route.redirect(server.url("/story"), 302))
    server.route("/story", Route(ARTICLE_HTML))
    article = only_article(load(server.url("/a")))
    assert (article.source_key, article.url) == (server.url("/a"), server.url("/story"))


def test_too_many_redirects(server: LocalHTTPServer) -> None:
    for hop in range(7):
        server.route(f"/hop{hop}", Route.redirect(f"/hop{hop + 1}"))
    assert only_failure(load(server.url("/hop0"))).error == f"{server.url('/hop0')} redirected more than 5 times"


@pytest.mark.parametrize("status", [404, 500])
def test_http_error_status(server: LocalHTTPServer, status: int) -> None:
    url = server.route("/gone", Route("nope", status=status))
    failure = only_failure(load(url))
    assert (failure.source, failure.error) == (url, f"HTTP {status} from {url}")


def test_http_error_after_redirect_names_both(server: LocalHTTPServer) -> None:
    url = server.route("/moved", Route.redirect("/missing"))
    assert only_failure(load(url)).error == f"HTTP 404 from {server.url('/missing')} (redirected from {url})"


def test_connection_refused() -> None:
    url = closed_port_url("/story")
    assert only_failure(load(url)).error == f"could not connect to {url}: connection refused (is the server up?)"


def test_slow_url_times_out(server: LocalHTTPServer) -> None:
    url = server.route("/slow", Route(ARTICLE_HTML, delay=5))
    started = time.monotonic()
    failure = only_failure(load(url, options=FAST))
    assert failure.error == f"{url} timed out after 0.5s"
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("chunked", [True, False], ids=["streamed", "content-length"])
def test_body_over_the_size_cap(server: LocalHTTPServer, chunked: bool) -> None:
    body = "<html><body>" + "<p>Lashkargah update.</p>" * 20_000 + "</body></html>"
    url = server.route("/big", Route(body, chunk_size=4096 if chunked else None))
    failure = only_failure(load(url, options=replace(LOCAL_FETCH, max_bytes=64 * 1024)))
    expected = "is larger than the 64 KB limit; stopped reading" if chunked else "over the 64 KB limit"
    assert failure.error.startswith(url) and expected in failure.error


def test_non_http_scheme() -> None:
    failure = only_failure(load("file:///etc/passwd"))
    assert failure.error == (
        "unsupported URL scheme 'file' in file:///etc/passwd; only http and https URLs can be fetched"
    )


def test_unsupported_content_type(server: LocalHTTPServer) -> None:
    url = server.route("/photo.jpg", Route(b"\xff\xd8\xff\xe0", content_type="image/jpeg"))
    assert only_failure(load(url)).error == f"{url} is image/jpeg, not a web page, feed, PDF or JSON"


def test_page_without_article_text(server: LocalHTTPServer) -> None:
    url = server.route("/menu", Route((MIXED / "menu-only.html").read_text()))
    assert only_failure(load(url)).error == f"no article text found in {url}"


def test_page_without_site_name_is_attributed_to_its_host(server: LocalHTTPServer) -> None:
    html = ARTICLE_HTML.replace('<meta property="og:site_name" content="Helmand Herald">', "")
    url = server.route("/plain", Route(html.replace("| Helmand Herald", "")))
    assert only_article(load(url)).source.split(":")[0] == "127.0.0.1"


def test_declared_http_charset_is_used(server: LocalHTTPServer) -> None:
    html = ARTICLE_HTML.replace('<meta charset="utf-8">', "").replace("provincial council.", "council’s head.")
    url = server.route("/cp1252", Route(html.encode("cp1252"), content_type="text/html; charset=windows-1252"))
    assert "council’s head." in only_article(load(url)).text


def test_pdf_plain_text_and_json_urls(server: LocalHTTPServer) -> None:
    pdf = server.route("/files/flash-update-3.pdf", Route(make_pdf(["Fighting displaced 35,000 people."]),
                                                          content_type="application/octet-stream"))
    txt = server.route("/notes/governor-statement.txt", Route("The governor said the city is safe.",
                                                             content_type="text/plain; charset=utf-8"))
    records = server.route("/api/wire", Route(json.dumps({"items": [{"id": "w1", "text": "Curfew extended."}]}),
                                              content_type="application/json"))
    pdf_article, text_article, record = (only_article(load(url)) for url in (pdf, txt, records))
    assert (pdf_article.text, pdf_article.title, pdf_article.kind) == (
        "Fighting displaced 35,000 people.", "Flash update 3", "url")
    assert (text_article.text, text_article.title) == ("The governor said the city is safe.", "Governor statement")
    assert (record.source_key, record.text, record.kind) == (f"{records}#w1", "Curfew extended.", "json")


def test_one_bad_source_does_not_stop_the_others(server: LocalHTTPServer) -> None:
    good = server.route("/story", Route(ARTICLE_HTML))
    items = load(closed_port_url(), MIXED / "nawa-crash.md", server.url("/missing"), good, options=FAST)
    assert [type(item).__name__ for item in items] == ["LoadFailure", "Article", "LoadFailure", "Article"]


def test_a_record_that_wraps_articles_says_where_they_are(tmp_path: Path) -> None:
    wrapped = {"question_id": "q1", "search_result": [{"url": "https://news.test/a", "text": "Floods in Kunduz."},
                                                       {"url": "https://news.test/b", "text": "Roads reopened."}]}
    path = write(tmp_path / "results.jsonl", json.dumps(wrapped) + "\n")
    [failure] = load(path)
    assert isinstance(failure, LoadFailure)
    assert 'has no text: "text" is required (its "search_result" field holds 2 records with text' in failure.error


def test_the_items_of_local_sources_are_counted_ahead_for_the_progress_bar(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("Clashes in Nad Ali.\n")
    (folder / "sub" / "b.md").write_text("# Convoy\nThe convoy arrived.\n")
    (folder / ".hidden.txt").write_text("not read\n")
    (folder / "notes.csv").write_text("not read\n")
    records = "\n".join(json.dumps({"text": f"Report {i}."}) for i in range(3))
    (folder / "c.jsonl").write_text(records)  # no newline at the end: still three
    sources = [str(folder), str(tmp_path / "missing.txt"), ""]
    assert count_sources(sources) == 1 + 1 + 3 + 1 + 1
    assert count_sources(sources) == len(list(iter_sources(sources)))  # what the loaders then yield
    (tmp_path / "list.json").write_text(json.dumps([{"text": "One."}, {"text": "Two."}]))
    assert count_sources([str(folder), str(tmp_path / "list.json")]) is None  # only reading a JSON file tells
    assert count_sources(["https://example.test/feed.xml"]) is None  # an article, or a feed of many
    assert count_sources([str(tmp_path / "empty")]) == 1  # no such folder: one failure
