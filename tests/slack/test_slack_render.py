"""Answer → Block Kit: escaping, links, Slack's size limits, and Slack markup → plain text."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.answer.results import Answer, Citation
from bot.render.slack import (
    FEEDBACK_DOWN,
    FEEDBACK_UP,
    MAX_BLOCKS,
    StreamNeutralizer,
    escape,
    link,
    markdown_to_mrkdwn,
    markdown_to_plain,
    plain_text_from_slack,
    render_answer,
    render_notice,
    slack_urls,
    source_line,
    split_mrkdwn,
)
from bot.slack.listeners.summarize import UsageError, parse_summarize_args

HOSTILE = "Alert <!channel> and <!here|here> and <@U123> and <javascript:alert(1)|x> & @everyone"


def citation(n: int, url: str = "https://example-news.test/a", title: str = "Helicopters crash",
             source: str = "Kabul Ledger", published: str | None = "2020-10-14T09:30:00+00:00") -> Citation:
    return Citation(n=n, doc_id=f"d{n}", chunk_id=f"d{n}:0", title=title, source=source, url=url,
                    published=published, quote="quote")


def all_texts(obj: object) -> list[str]:
    """Every string value named ``text`` anywhere in a Block Kit structure."""
    found: list[str] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "text" and isinstance(value, str):
                found.append(value)
            else:
                found.extend(all_texts(value))
    elif isinstance(obj, list):
        for item in obj:
            found.extend(all_texts(item))
    return found


def assert_inert(text: str) -> None:
    """No Slack control sequence except http(s) links; no live broadcast word."""
    for target in re.findall(r"<([^<>]*)>", text):
        assert re.match(r"https?://", target), f"non-http link or mention survived: <{target}>"
    assert not re.search(r"(?<!\w)@(channel|here|everyone)\b", text, re.IGNORECASE)


def test_escape_makes_control_sequences_inert() -> None:
    out = escape(HOSTILE)
    assert "<" not in out and ">" not in out
    assert "&lt;!channel&gt;" in out and "&lt;@U123&gt;" in out and "&amp;" in out
    assert_inert(out)


def test_links_only_for_http_urls() -> None:
    assert link("https://a.test/x?a=1&b=2", "Title") == "<https://a.test/x?a=1&amp;b=2|Title>"
    assert link("javascript:alert(1)", "x") == "x"
    assert link("file:///etc/passwd", "f") == "f"
    assert link("https://a.test/a|b", "t") == "<https://a.test/a%7Cb|t>"
    assert link("https://a.test/", "<!channel>") == "<https://a.test/|&lt;!channel&gt;>"


def test_markdown_to_mrkdwn_formats_and_neutralizes() -> None:
    md = "## Overview\n**Nine** died in *Nawa* [1].\n- first\n* second\n~~old~~ [site](https://x.test/p) " \
         "[bad](javascript:alert(1)) `code <!here>`"
    out = markdown_to_mrkdwn(md)
    assert "*Overview*" in out
    assert "*Nine* died in _Nawa_ [1]." in out
    assert "• first" in out and "• second" in out
    assert "~old~" in out
    assert "<https://x.test/p|site>" in out
    assert "bad" in out and "javascript" not in out.replace("[bad]", "")
    assert "`code &lt;!here&gt;`" in out
    assert_inert(out)


def test_source_line_format() -> None:
    assert source_line(citation(2)) == "[2] <https://example-news.test/a|Helicopters crash> — Kabul Ledger, 14 Oct 2020"
    no_url = source_line(citation(3, url="", title="Print edition", published=None))
    assert no_url == "[3] Print edition — Kabul Ledger, date unknown"
    hostile = source_line(citation(4, url="javascript:alert(1)", title="<!channel> x", source="<@U123>"))
    assert_inert(hostile)
    assert "javascript" not in hostile


def test_render_answer_blocks() -> None:
    answer = Answer(question="q", answer="Nine people died [1]; others say 8 to 15 [2].",
                    citations=[citation(1), citation(2, url="https://wire.test/b", source="Frontier Wire")],
                    as_of="2020-10-14T15:00:00+00:00")
    [message] = render_answer(answer, "abc123")
    assert message.post_kwargs()["unfurl_links"] is False and message.post_kwargs()["unfurl_media"] is False
    texts = all_texts(message.blocks)
    assert any(t.startswith("*Sources*\n[1] <https://example-news.test/a|") for t in texts)
    assert any("[2] <https://wire.test/b|Helicopters crash> — Frontier Wire, 14 Oct 2020" in t for t in texts)
    assert any("As of 14 Oct 2020" in t for t in texts)
    actions = [b for b in message.blocks if b["type"] == "actions"]
    assert [e["action_id"] for e in actions[0]["elements"]] == [FEEDBACK_UP, FEEDBACK_DOWN]
    assert {e["value"] for e in actions[0]["elements"]} == {"abc123"}
    for block in message.blocks:
        if block["type"] == "section":
            assert block["text"]["verbatim"] is True


def test_abstained_answer_is_said_plainly_without_sources() -> None:
    answer = Answer(question="q", answer="The ingested articles don't cover the weather in Kabul.",
                    citations=[citation(1)], abstained=True)
    [message] = render_answer(answer, "id1")
    texts = all_texts(message.blocks)
    assert texts[0] == "The ingested articles don't cover the weather in Kabul."
    assert not any("Sources" in t for t in texts)


def test_long_answer_splits_under_slack_limits() -> None:
    paragraph = ("Fighting continued around Lashkargah as families fled to Nad Ali [1]. " * 40).strip()
    body = "\n\n".join(f"{paragraph} Part {i}." for i in range(60))  # ~170k characters
    cites = [citation(n, url=f"https://example-news.test/{n}") for n in range(1, 80)]
    messages = render_answer(Answer(question="q", answer=body, citations=cites), "id2")
    assert len(messages) > 1
    for message in messages:
        assert len(message.blocks) < 50 and len(message.blocks) <= MAX_BLOCKS
        for block in message.blocks:
            if block["type"] == "section":
                assert 0 < len(block["text"]["text"]) < 3000
        assert len(message.text) < 3000
    assert messages[-1].blocks[-1]["type"] == "actions"  # feedback after the Sources, at the very end
    assert "cut here" in json.dumps([m.blocks for m in messages])


def test_split_never_cuts_inside_links_or_entities() -> None:
    unit = "word &amp; <https://example.test/some/long/path|a linked title with spaces> "
    text = unit * 200
    for piece in split_mrkdwn(text, 500):
        assert len(piece) <= 500
        assert piece.count("<") == piece.count(">")
        assert not re.search(r"&[a-z]{0,4}$", piece)


def test_split_closes_code_fences() -> None:
    text = "intro\n```\n" + ("line of code\n" * 400) + "```\nend"
    pieces = split_mrkdwn(text, 1000)
    assert len(pieces) > 1
    assert all(p.count("```") % 2 == 0 for p in pieces)


def test_notice_is_escaped() -> None:
    notice = render_notice("Failed for <!channel>")
    assert_inert(notice.text)
    assert all("&lt;!channel&gt;" in t for t in all_texts(notice.blocks))


def test_stream_neutralizer_holds_split_broadcast_words() -> None:
    n = StreamNeutralizer()
    pieces = [n.feed(p) for p in ["Tell @chan", "nel and <!he", "re> now @", "everyone!", " ok @"]]
    pieces.append(n.flush())
    out = "".join(pieces)
    assert_inert(out)
    assert "&lt;!here&gt;" in out
    assert out.replace("\u2060", "") == escape("Tell @channel and <!here> now @everyone! ok @").replace("\u2060", "")


def test_fallback_text_is_plain_text() -> None:
    body = ("**Daily digest — Fri 16 Oct 2020**\n- 15 Oct 2020 — Two army helicopters crashed in *Nawa* [1]\n"
            "## Update\n> See [the report](https://a.test/r_(1)) and `the map` ~~old~~ <!channel>")
    [message] = render_answer(Answer(question="q", answer=body, citations=[citation(1)]), "id")
    assert message.text == ("Daily digest — Fri 16 Oct 2020 • 15 Oct 2020 — Two army helicopters crashed in Nawa [1] "
                            "Update: See the report and the map old &lt;!channel&gt;")
    assert markdown_to_plain("```python\nx = 1\n```").strip() == "x = 1"
    long = render_answer(Answer(question="q", answer="a &amp; b " * 2000, citations=[citation(1)]), "id")[0].text
    assert len(long) <= 2900 and long.endswith("…") and not re.search(r"&[a-z]{0,4}…$", long)


def test_bidi_overrides_are_dropped_and_links_with_parentheses_kept() -> None:
    assert escape("Tolo \u202eDari\u202c \u2067x\u2069") == "Tolo Dari x"
    assert link("https://a.test/\u202egnp.exe", "t") == "t"
    assert markdown_to_mrkdwn("[Lashkargah](https://en.wiki.test/wiki/Lashkar_Gah_(city))") == (
        "<https://en.wiki.test/wiki/Lashkar_Gah_(city)|Lashkargah>")


def test_stream_neutralizer_breaks_markdown_links() -> None:
    n = StreamNeutralizer()
    pieces = [n.feed(p) for p in ["see [the map]", "(javascript:alert(1)) and\n[1]", ": javascript:x\n"]]
    out = "".join(pieces) + n.flush()
    assert "](" not in out and "]:" not in out
    assert out.replace("\u2060", "") == "see [the map](javascript:alert(1)) and\n[1]: javascript:x\n"


def test_plain_text_from_slack() -> None:
    text = "<@UBOT> what did <@U42|bob> say about <https://a.test/x|this> in <#C1|news>? &lt;b&gt; <!here>"
    assert plain_text_from_slack(text, "UBOT") == "what did @bob say about this in #news? <b>"
    assert slack_urls("<@UBOT> ingest <https://a.test/x?a=1&amp;b=2> <mailto:x@y.z|x> <javascript:x>") == [
        "https://a.test/x?a=1&b=2"
    ]


def test_parse_summarize_args() -> None:
    now = datetime(2020, 10, 20, 12, tzinfo=UTC)
    assert parse_summarize_args("", now=now) == (None, None)
    assert parse_summarize_args("Helmand fighting", now=now) == ("Helmand fighting", None)
    assert parse_summarize_args("Helmand 24h", now=now) == ("Helmand", now - timedelta(hours=24))
    assert parse_summarize_args("7d", now=now) == (None, now - timedelta(days=7))
    assert parse_summarize_args("--since 2020-10-14 Nawa", now=now) == ("Nawa", datetime(2020, 10, 14, tzinfo=UTC))
    for bad in ("Helmand 2020-13-45", "Helmand 2030-01-01", "Helmand --since", "help", "x" * 400):
        with pytest.raises(UsageError):
            parse_summarize_args(bad, now=now)
