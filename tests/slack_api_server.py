"""A local stand-in for Slack's Web API: real HTTP on 127.0.0.1, in a thread, for tests and benchmarks.

It records every call (method, parameters from the query string, form or JSON body, and the token), keeps
the messages posted (with their ``metadata``) so ``conversations.replies`` returns real thread history and
``conversations.history`` the channel's top-level messages (``oldest``, ``include_all_metadata``), and can be
scripted to fail a method (HTTP 429 with ``Retry-After``, or ``ok: false`` with an error code) a number of
times. Message timestamps are real ones (now), so ``oldest`` filtering behaves as on Slack.

    with SlackApiServer() as slack:
        client = WebClient(token=slack.token, base_url=slack.url)
        slack.fail("chat.postMessage", status=429, retry_after=0)
        ...
        slack.wait_for("chat.postMessage", count=1)

``response_url`` targets: ``slack.response_url("abc")`` gives a URL on this server; posts to it are
recorded as method ``response_url`` with ``params["_id"] == "abc"``. ``GET /_calls`` returns the recorded calls
as JSON, for a driver running in another process (``python tests/slack_api_server.py`` serves until killed and
prints its URL).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog of 5 resets connections under a burst of posts

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hung up (a timeout under test) is expected; its traceback would land in whichever
        # test captures stderr next. Anything else is a bug of this server and is printed.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@dataclass
class Call:
    """One request the server received."""

    method: str
    params: dict[str, Any]
    token: str | None
    response: dict[str, Any] = field(default_factory=dict)  # what the server answered
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Failure:
    status: int
    error: str
    retry_after: int | None
    times: int


class SlackApiServer:
    """The fake Web API. ``url`` ends with ``/`` like ``https://slack.com/api/``."""

    echo_metadata = True  # False: history comes back without metadata, as through a proxy that drops it

    def __init__(
        self,
        token: str = "xoxb-test-token",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        team_id: str = "T0TEST",
    ) -> None:
        self.token = token
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.team_id = team_id
        self.calls: list[Call] = []
        self._cond = threading.Condition()
        self._failures: dict[str, list[_Failure]] = {}
        self._threads: dict[tuple[str, str], list[dict[str, Any]]] = {}  # (channel, thread root ts) -> msgs
        self._streams: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) -> streamed message
        self._ts = itertools.count(1)
        self._httpd = _Server(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="slack-api-server", daemon=True)

    # -- lifecycle --------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, ident: str) -> str:
        return f"http://127.0.0.1:{self.port}/response/{ident}"

    def start(self) -> SlackApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> SlackApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting --------------------------------------------------------------------------------------

    def fail(
        self, method: str, *, status: int = 200, error: str = "internal_error", retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail: HTTP ``status`` (429 adds ``Retry-After``) or
        HTTP 200 with ``{"ok": false, "error": error}``."""
        with self._cond:
            self._failures.setdefault(method, []).append(_Failure(status, error, retry_after, times))

    def add_message(
        self, channel: str, ts: str, text: str, user: str = "U1", thread_ts: str | None = None,
        bot_id: str | None = None,
    ) -> dict[str, Any]:
        """Put a message into the history ``conversations.replies`` serves."""
        message: dict[str, Any] = {"type": "message", "ts": ts, "text": text, "user": user}
        if thread_ts:
            message["thread_ts"] = thread_ts
        if bot_id:
            message["bot_id"] = bot_id
        with self._cond:
            self._threads.setdefault((channel, thread_ts or ts), []).append(message)
        return message

    def reset(self) -> None:
        """Forget recorded calls, scripted failures and history."""
        with self._cond:
            self.calls.clear()
            self._failures.clear()
            self._threads.clear()
            self._streams.clear()

    # -- inspection -------------------------------------------------------------------------------------

    def calls_to(self, method: str, where: Callable[[Call], bool] | None = None) -> list[Call]:
        with self._cond:
            return [c for c in self.calls if c.method == method and (where is None or where(c))]

    def wait_for(
        self, method: str, count: int = 1, timeout: float = 10.0, where: Callable[[Call], bool] | None = None
    ) -> list[Call]:
        """Wait until at least ``count`` matching calls arrived; return them (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [c for c in self.calls if c.method == method and (where is None or where(c))]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = sorted({c.method for c in self.calls})
                    raise AssertionError(f"expected {count} call(s) to {method}, got {len(found)}; saw {seen}")
                self._cond.wait(remaining)

    def thread_messages(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        with self._cond:
            return list(self._threads.get((channel, thread_ts), []))

    # -- request handling -------------------------------------------------------------------------------

    def _next_ts(self) -> str:
        # Now, plus a millisecond per message so timestamps stay unique and increasing.
        return f"{time.time() + next(self._ts) / 1000:.6f}"

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.times -= 1
        if failure.times <= 0:
            queue.pop(0)
        return failure

    def _record(self, method: str, params: dict[str, Any], token: str | None) -> tuple[int, dict, dict]:
        with self._cond:
            call = Call(method, params, token)
            failure = self._take_failure(method)
            if failure is not None:
                result = self._failure_response(failure)
            elif method != "response_url" and token != self.token:
                result = (200, {"ok": False, "error": "invalid_auth"}, {})
            else:
                result = (200, self._answer(method, params), {})
            call.response = result[1]
            self.calls.append(call)
            self._cond.notify_all()
            return result

    @staticmethod
    def _failure_response(failure: _Failure) -> tuple[int, dict, dict]:
        if failure.status == 429:
            headers = {"Retry-After": str(failure.retry_after if failure.retry_after is not None else 1)}
            return 429, {"ok": False, "error": "ratelimited"}, headers
        if failure.status != 200:
            return failure.status, {"ok": False, "error": failure.error}, {}
        return 200, {"ok": False, "error": failure.error}, {}

    def _post(self, channel: str, params: dict[str, Any], text: str) -> dict[str, Any]:
        ts = self._next_ts()
        message: dict[str, Any] = {"type": "message", "ts": ts, "text": text, "user": self.bot_user_id,
                                   "bot_id": self.bot_id}
        if params.get("blocks"):
            message["blocks"] = params["blocks"]
        if isinstance(params.get("metadata"), dict):
            message["metadata"] = params["metadata"]
        thread_ts = params.get("thread_ts")
        if thread_ts:
            message["thread_ts"] = thread_ts
        self._threads.setdefault((channel, thread_ts or ts), []).append(message)
        return message

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel", ""))
        if method == "auth.test":
            return {"ok": True, "url": "https://sitrep-test.slack.com/", "team": "Test", "user": "sitrep",
                    "team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": self.bot_id}
        if method == "chat.postMessage":
            message = self._post(channel, params, str(params.get("text", "")))
            return {"ok": True, "channel": channel, "ts": message["ts"], "message": message}
        if method == "chat.update":
            for messages in self._threads.values():
                for message in messages:
                    if message["ts"] == params.get("ts"):
                        message["text"] = params.get("text", message["text"])
                        if params.get("blocks"):
                            message["blocks"] = params["blocks"]
            return {"ok": True, "channel": channel, "ts": params.get("ts"), "text": params.get("text", "")}
        if method == "chat.startStream":
            message = self._post(channel, params, "")
            self._streams[(channel, message["ts"])] = message
            self._append_stream(channel, message["ts"], params)
            return {"ok": True, "channel": channel, "ts": message["ts"]}
        if method in ("chat.appendStream", "chat.stopStream"):
            if (channel, params.get("ts")) not in self._streams:
                return {"ok": False, "error": "message_not_found"}
            self._append_stream(channel, str(params["ts"]), params)
            return {"ok": True, "channel": channel, "ts": params["ts"]}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self._next_ts()}
        if method == "conversations.replies":
            messages = self._threads.get((channel, str(params.get("ts"))))
            if messages is None:
                return {"ok": False, "error": "thread_not_found"}
            return {"ok": True, "messages": sorted(messages, key=lambda m: float(m["ts"])), "has_more": False}
        if method == "conversations.history":
            return self._history(channel, params)
        if method in ("views.open", "views.publish"):
            return {"ok": True, "view": {"id": "V1", **(params.get("view") or {})}}
        if method == "apps.connections.open":
            return {"ok": False, "error": "not_allowed_token_type"}
        # assistant.threads.*, reactions.add, response_url, and anything else: acknowledged.
        return {"ok": True}

    def _history(self, channel: str, params: dict[str, Any]) -> dict[str, Any]:
        """The channel's top-level messages newer than ``oldest``, newest first."""
        oldest = float(params.get("oldest") or 0)
        include = str(params.get("include_all_metadata")).lower() in ("1", "true")
        roots = [m for (c, root), messages in self._threads.items() if c == channel for m in messages
                 if m["ts"] == root and float(m["ts"]) > oldest]
        roots.sort(key=lambda m: -float(m["ts"]))
        if not include or not self.echo_metadata:
            roots = [{k: v for k, v in m.items() if k != "metadata"} for m in roots]
        return {"ok": True, "messages": roots, "has_more": False}

    def _append_stream(self, channel: str, ts: str, params: dict[str, Any]) -> None:
        message = self._streams[(channel, ts)]
        texts = [params.get("markdown_text") or ""]
        for chunk in params.get("chunks") or []:
            if isinstance(chunk, dict) and chunk.get("type") == "markdown_text":
                texts.append(str(chunk.get("text", "")))
        message["text"] += "".join(texts)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                return

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                params: dict[str, Any] = dict(parse_qsl(parts.query))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                content_type = (self.headers.get("Content-Type") or "").lower()
                if body and "json" in content_type:
                    params.update(json.loads(body))
                elif body:
                    params.update(parse_qsl(body.decode("utf-8")))
                for key in ("blocks", "view", "prompts", "attachments", "metadata"):
                    if isinstance(params.get(key), str):
                        with contextlib.suppress(ValueError):
                            params[key] = json.loads(params[key])
                auth = self.headers.get("Authorization") or ""
                token = auth.removeprefix("Bearer ") if auth else params.pop("token", None)
                if parts.path == "/_calls":  # for a test driver in another process
                    with server._cond:
                        calls = [{"method": c.method, "params": c.params, "response": c.response}
                                 for c in server.calls]
                    self._reply(200, {"ok": True, "calls": calls}, {})
                    return
                if parts.path.startswith("/api/"):
                    method = parts.path[len("/api/") :]
                elif parts.path.startswith("/response/"):
                    method = "response_url"
                    params["_id"] = parts.path[len("/response/") :]
                else:
                    self._reply(404, {"ok": False, "error": "unknown_path"}, {})
                    return
                status, payload, headers = server._record(method, params, token)
                self._reply(status, payload, headers)

            def _reply(self, status: int, payload: dict, headers: dict[str, str]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = _handle
            do_POST = _handle

        return Handler


if __name__ == "__main__":
    import sys

    with SlackApiServer() as running, contextlib.suppress(KeyboardInterrupt):
        print(running.url, flush=True)
        sys.stdin.read()  # serve until stdin closes (the parent process exits or closes the pipe)
