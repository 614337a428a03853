"""Test harness for the Slack bot: signed requests (v0 HMAC), Slack-shaped payloads, the bot's Starlette
app served by uvicorn on 127.0.0.1 in a thread, and the fixtures the ``test_slack_*`` modules share (import
them into a test module to use them)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn

from bot.answer.engine import Engine
from bot.settings import Settings, load_settings
from bot.slack.app import SlackBot
from bot.slack.state import SlackState
from retrieval.corpus import Corpus, CorpusConfig
from retrieval.embeddings import MiniLMEmbedding

from conftest import fixture_articles
from slack_api_server import Call, SlackApiServer

SIGNING_SECRET = "test-signing-secret-0123456789"
_ids = itertools.count(1)


def sign(body: bytes, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack sends: ``X-Slack-Request-Timestamp`` and the v0 signature of the body."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + ts.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def event_body(event: dict[str, Any], event_id: str | None = None, team_id: str = "T0TEST") -> tuple[bytes, str]:
    """An Events API ``event_callback`` envelope; returns (JSON body, event_id)."""
    event_id = event_id or f"Ev{next(_ids):08d}"
    envelope = {
        "token": "legacy-verification-token",
        "team_id": team_id,
        "api_app_id": "A0SITREP",
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [{"team_id": team_id, "user_id": "UBOT", "is_bot": True}],
    }
    return json.dumps(envelope).encode(), event_id


def new_ts() -> str:
    """A fresh message timestamp."""
    return f"{1_600_000_000 + next(_ids)}.{next(_ids):06d}"


def mention_event(text: str, channel: str = "C0NEWS", user: str = "U0ALICE", ts: str | None = None,
                  thread_ts: str | None = None) -> dict[str, Any]:
    event = {"type": "app_mention", "user": user, "text": f"<@UBOT> {text}", "ts": ts or new_ts(),
             "channel": channel, "team": "T0TEST", "event_ts": ts}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def message_event(text: str, channel: str = "C0NEWS", user: str = "U0ALICE", ts: str | None = None,
                  thread_ts: str | None = None, channel_type: str = "channel", **extra: Any) -> dict[str, Any]:
    event = {"type": "message", "user": user, "text": text, "ts": ts or new_ts(), "channel": channel,
             "channel_type": channel_type, "team": "T0TEST", **extra}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def command_body(command: str, text: str, response_url: str, channel: str = "C0NEWS",
                 user: str = "U0ALICE") -> bytes:
    """A slash command as Slack posts it (form-encoded)."""
    return urlencode({
        "token": "legacy-verification-token", "team_id": "T0TEST", "team_domain": "test",
        "channel_id": channel, "channel_name": "news", "user_id": user, "user_name": "alice",
        "command": command, "text": text, "api_app_id": "A0SITREP", "is_enterprise_install": "false",
        "response_url": response_url, "trigger_id": f"trig{next(_ids)}",
    }).encode()


def action_body(action: dict[str, Any], response_url: str, channel: str = "C0NEWS", user: str = "U0ALICE",
                message: dict[str, Any] | None = None) -> bytes:
    """A ``block_actions`` interaction (form-encoded ``payload=``)."""
    payload = {
        "type": "block_actions",
        "team": {"id": "T0TEST", "domain": "test"},
        "user": {"id": user, "username": "alice", "team_id": "T0TEST"},
        "api_app_id": "A0SITREP",
        "token": "legacy-verification-token",
        "container": {"type": "message", "channel_id": channel, "is_ephemeral": False},
        "trigger_id": f"trig{next(_ids)}",
        "channel": {"id": channel, "name": "news"},
        "message": message or {"type": "message", "ts": new_ts()},
        "response_url": response_url,
        "actions": [action],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """An ASGI app under uvicorn on 127.0.0.1 in a daemon thread."""

    def __init__(self, app: Any) -> None:
        from bot.slack.server import uvicorn_config

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", self.port))
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def post_signed(client: httpx.Client, url: str, body: bytes, content_type: str, *, secret: str = SIGNING_SECRET,
                timestamp: int | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
    """POST ``body`` with Slack's signature headers (plus ``headers``)."""
    all_headers = {"Content-Type": content_type, **sign(body, secret, timestamp), **(headers or {})}
    return client.post(url, content=body, headers=all_headers)


class BotHarness:
    """A :class:`~bot.slack.app.SlackBot` served over real HTTP on 127.0.0.1, with helpers that send it
    signed Slack requests. Use as a context manager."""

    def __init__(self, bot: Any, slack: Any) -> None:
        from bot.slack.server import create_http_app

        self.bot = bot
        self.slack = slack
        self.server = ServerThread(create_http_app(bot))
        self.http = httpx.Client(timeout=15)

    def __enter__(self) -> BotHarness:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()
        self.server.__exit__(*exc)
        self.bot.close()

    @property
    def events_url(self) -> str:
        return self.server.url + "/slack/events"

    def send_event(self, event: dict[str, Any], event_id: str | None = None,
                   headers: dict[str, str] | None = None) -> tuple[httpx.Response, str]:
        body, event_id = event_body(event, event_id)
        return post_signed(self.http, self.events_url, body, "application/json", headers=headers), event_id

    def send_command(self, command: str, text: str, **kwargs: Any) -> httpx.Response:
        body = command_body(command, text, self.slack.response_url("cmd"), **kwargs)
        return post_signed(self.http, self.events_url, body, "application/x-www-form-urlencoded")

    def send_action(self, action: dict[str, Any], **kwargs: Any) -> httpx.Response:
        body = action_body(action, self.slack.response_url("action"), **kwargs)
        return post_signed(self.http, self.events_url, body, "application/x-www-form-urlencoded")

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until every listener and queued job has finished."""
        assert self.bot.wait_idle(timeout), "the bot did not finish its work in time"


# -- shared fixtures and helpers -----------------------------------------------------------------------

CRASH_QUESTION = "How many people died when the helicopters crashed, and where?"
# A scripted LLM reply whose sentences are each supported by one fixture article.
MODEL_ANSWER = (
    "A provincial council member said between eight and fifteen people died when two helicopters collided "
    "in Nawa [1]. The Ministry of Defense said two army helicopters crashed in Nawa district of Helmand, "
    "killing at least nine people [2]."
)


@pytest.fixture(name="slack")
def slack_fixture() -> Iterator[SlackApiServer]:
    with SlackApiServer() as server:
        yield server


def settings_for(tmp_path: Path, slack: SlackApiServer, **env: str) -> Settings:
    base = {
        "SITREP_DATA_DIR": str(tmp_path / "data"),
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.url,
        "SITREP_ANSWER_MODE": "extractive",
    }
    return load_settings({**base, **env})


class SpyEngine:
    """The real engine, with its calls recorded (and optionally held until released)."""

    def __init__(self, engine: Engine, hold: threading.Event | None = None) -> None:
        self._engine = engine
        self._hold = hold
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def ask(self, question: str, **kwargs: Any) -> Any:
        self.calls.append((question, kwargs))
        if self._hold is not None:
            self._hold.wait(20)
        return self._engine.ask(question, **kwargs)


_ingested: dict[str, Path] = {}  # the shared corpus's data directory, built once per test session


@pytest.fixture(name="shared_corpus", scope="module")
def shared_corpus_fixture(tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbedding) -> Iterator[Corpus]:
    """The fixture articles, ingested once per session, for the tests that do not add articles (each module
    that imports this fixture reopens the same store, which takes milliseconds)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("retrieval.corpus.make_embedder", lambda *a, **k: embedder)
        if "dir" not in _ingested:
            data_dir = tmp_path_factory.mktemp("slack-corpus")
            corpus = Corpus.open(CorpusConfig(data_dir=data_dir))
            corpus.ingest_articles(fixture_articles())
            corpus.close()
            _ingested["dir"] = data_dir
        corpus = Corpus.open(CorpusConfig(data_dir=_ingested["dir"]))
        yield corpus
        corpus.close()


@pytest.fixture(name="make_harness")
def make_harness_fixture(tmp_path: Path, slack: SlackApiServer, shared_corpus: Corpus
                 ) -> Iterator[Callable[..., BotHarness]]:
    harnesses: list[BotHarness] = []

    def make(wrap: Callable[[Engine], Any] | None = None, corpus: Corpus | None = None,
             state: Callable[[Path], SlackState] | None = None, clock: Callable[[], datetime] | None = None,
             **env: str) -> BotHarness:
        """``state`` opens the bot's SlackState from the state database path (default: the usual one)."""
        settings = settings_for(tmp_path, slack, **env)
        corpus = corpus or shared_corpus
        engine = Engine(settings.llm, corpus)
        bot_state = state(settings.data_dir / "state.db") if state else None
        extra = {"clock": clock} if clock else {}
        bot = SlackBot(settings, wrap(engine) if wrap else engine, corpus, state=bot_state, **extra)
        harness = BotHarness(bot, slack).__enter__()
        harnesses.append(harness)
        return harness

    yield make
    for harness in harnesses:
        harness.__exit__(None, None, None)


def in_thread(thread_ts: str) -> Callable[[Call], bool]:
    return lambda call: call.params.get("thread_ts") == thread_ts


def posted_in(thread_ts: str) -> Callable[[Call], bool]:
    """Messages Slack accepted in the thread."""
    return lambda call: call.params.get("thread_ts") == thread_ts and bool(call.response.get("ok"))


def texts_of(call: Call) -> str:
    """Everything a posted message shows: its fallback text and every text in its blocks."""
    found = [str(call.params.get("text", ""))]

    def walk(obj: object) -> None:
        if isinstance(obj, dict):
            for key, value in obj.items():
                if key == "text" and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(obj, list):
            for item in obj:
                walk(item)

    walk(call.params.get("blocks"))
    return "\n".join(found)


def ask(h: BotHarness, text: str, **kwargs: Any) -> tuple[dict[str, Any], Call]:
    """Mention the bot and wait for its answer in the thread."""
    event = mention_event(text, **kwargs)
    h.slack.add_message(event["channel"], event["ts"], event["text"], user=event["user"],
                        thread_ts=event.get("thread_ts"))
    response, _ = h.send_event(event)
    assert response.status_code == 200
    thread = event.get("thread_ts") or event["ts"]
    before = len(h.slack.calls_to("chat.postMessage", posted_in(thread)))
    calls = h.slack.wait_for("chat.postMessage", count=before + 1, where=posted_in(thread))
    return event, calls[-1]


def answer_id_of(call: Call) -> str:
    for block in call.params["blocks"]:
        if block["type"] == "actions":
            return str(block["elements"][0]["value"])
    raise AssertionError("no feedback buttons")


# -- what may reach Slack ---------------------------------------------------------------------------------

# Methods whose parameters people see: messages, edits, streamed text, ephemeral and response_url replies.
SHOWN_METHODS = ("chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream", "chat.stopStream",
                 "chat.postEphemeral", "response_url")
_SHOWN_KEYS = ("text", "blocks", "markdown_text", "chunks", "attachments")
# "<@U0ALICE>" right after "requested by" is the header of a /summarize result naming who asked (the id comes
# from Slack's signed request, never from article text); every other control sequence is a bug.
_LINK_TARGET = re.compile(r"(?<!requested by )<([^<>]*)>")
_HTTP_LINK = re.compile(r"https?://[^\s|<>]+(?:\|[^<>]*)?")
_BROADCAST_WORD = re.compile(r"(?<!\w)@(?:channel|here|everyone)\b", re.IGNORECASE)
_MARKDOWN_LINK = re.compile(r"\]\((?!https?://)|^\s*\[[^\]]*\]:", re.MULTILINE)
_BIDI_CONTROL = re.compile("[\u202a-\u202e\u2066-\u2069]")


def shown_strings(value: object) -> list[str]:
    """Every string inside a message's shown parameters, recursively (block ids and action ids included)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in shown_strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in shown_strings(item)]
    return []


def check_slack_limits(call: Call) -> list[str]:
    """Slack's limits this call breaks (empty when none): text, block count, section and context text,
    button text and value, streamed markdown."""
    problems = []
    params = call.params
    if len(str(params.get("text") or "")) > 4000:
        problems.append(f"text of {len(params['text'])} characters")
    if len(str(params.get("markdown_text") or "")) > 12_000:
        problems.append("markdown_text over 12,000 characters")
    blocks = params.get("blocks") or []
    if len(blocks) > 50:
        problems.append(f"{len(blocks)} blocks")
    for block in blocks:
        texts = [block.get("text")] if isinstance(block.get("text"), dict) else []
        texts += [e for e in block.get("elements") or [] if block.get("type") == "context"]
        for text in texts:
            if len(str(text.get("text", ""))) >= 3000:
                problems.append(f"{block.get('type')} text of {len(text['text'])} characters")
        for element in block.get("elements") or []:
            if element.get("type") == "button" and (len(element["text"]["text"]) > 75
                                                     or len(str(element.get("value", ""))) > 2000):
                problems.append("button text or value too long")
    return problems


def assert_slack_safe(calls: list[Call], forbidden: tuple[str, ...] = ("PWNED", "Traceback")) -> int:
    """Everything sitrep sent people (every message, edit, stream piece, ephemeral and response_url reply,
    text and blocks, recursively) is inert and within Slack's limits: no mention or broadcast, no link but
    http(s), no markdown link syntax in streamed text, no bidi override, none of ``forbidden``. Returns how
    many calls were checked."""
    shown = [c for c in calls if c.method in SHOWN_METHODS]
    for call in shown:
        where = f"{call.method} {json.dumps(call.params, ensure_ascii=False)[:300]}"
        # Streamed text is rendered as markdown, where [x](javascript:…) would be a link.
        for text in shown_strings([call.params.get("markdown_text"), call.params.get("chunks")]):
            assert not _MARKDOWN_LINK.search(text), f"markdown link syntax in {where}"
        for text in [s for key in _SHOWN_KEYS for s in shown_strings(call.params.get(key))]:
            for target in _LINK_TARGET.findall(text):
                assert _HTTP_LINK.fullmatch(target), f"live Slack control sequence <{target}> in {where}"
            assert not _BROADCAST_WORD.search(text), f"broadcast word in {where}"
            assert not _BIDI_CONTROL.search(text), f"bidi control character in {where}"
            for word in forbidden:
                assert word not in text, f"{word!r} in {where}"
        assert not check_slack_limits(call), f"{check_slack_limits(call)} in {where}"
    return len(shown)
