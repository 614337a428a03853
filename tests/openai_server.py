"""An OpenAI-compatible HTTP server on 127.0.0.1 for tests, scripted per test.

Push :class:`Reply` objects; each POST to ``/v1/chat/completions`` takes the next one. A reply with
``text`` is served as a JSON completion, or as server-sent-event chunks when the request asks to stream.
Replies can instead carry an error status, a raw (garbage) body, or a delay before responding (for
timeouts). Every request body is recorded (``server.requests``) so tests can assert on the prompt the
client sent. ``/v1/embeddings`` answers with deterministic vectors derived from the input text.

    with OpenAIServer() as server:
        server.push(Reply(text="Nine people died [1]."))
        ... OPENAI_BASE_URL=server.base_url ...
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted response to a chat completion request."""

    text: str | None = None  # a completion (streamed in pieces when the request has "stream": true)
    respond: Callable[[Request], str] | None = None  # computes the completion from the request instead
    status: int = 200
    error: str = "scripted error"  # the error message for status >= 400
    error_code: str | None = None  # e.g. "insufficient_quota"
    raw: bytes | None = None  # a body sent as is (garbage), with ``content_type``
    content_type: str = "application/json"
    delay: float = 0.0  # seconds to wait before answering (released early when the server stops)
    chunks: list[str] | None = None  # explicit stream deltas (default: ``text`` cut every ``chunk_size``)
    chunk_size: int = 7
    break_after: int | None = None  # stream this many deltas, then a malformed event (a server failing)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    """A request the server received."""

    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]

    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    def content(self, role: str) -> str:
        """The text of every message of ``role``, joined."""
        return "\n".join(str(m.get("content", "")) for m in self.messages() if m.get("role") == role)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hung up (the answer engine's timeouts are tested on purpose) is expected; its
        # traceback would land in whichever test captures stderr next. Anything else is printed.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class OpenAIServer:
    """The server, running in a daemon thread while in use (a context manager)."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="openai-test-server", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def push(self, *replies: Reply) -> None:
        """Queue replies for the next chat completion requests, in order."""
        with self._lock:
            self.replies.extend(replies)

    def chat_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def start(self) -> OpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_reply(self) -> Reply:
        with self._lock:
            if self.replies:
                return self.replies.popleft()
        return Reply(status=500, error="the test did not script a reply for this request")


def _handler_for(server: OpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                body = {"_unparsable": raw.decode("utf-8", "replace")}
            request = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            with server._lock:
                server.requests.append(request)
            if self.path.rstrip("/").endswith("/embeddings"):
                self._embeddings(body)
            elif self.path.rstrip("/").endswith("/chat/completions"):
                self._chat(request, server._next_reply())
            else:
                self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})

        def _chat(self, request: Request, reply: Reply) -> None:
            body = request.body
            if reply.delay and server._stopping.wait(reply.delay):
                return
            text = reply.respond(request) if reply.respond is not None else reply.text or ""
            if reply.raw is not None:
                self._send(reply.status, reply.raw, reply.content_type, reply.headers)
            elif reply.status >= 400:
                error = {"message": reply.error, "type": "scripted", "code": reply.error_code}
                self._send_json(reply.status, {"error": error}, reply.headers)
            elif body.get("stream"):
                self._stream(body, text, reply)
            else:
                self._send_json(200, _completion(body, text), reply.headers)

        def _stream(self, body: dict[str, Any], text: str, reply: Reply) -> None:
            pieces = reply.chunks or [text[i : i + reply.chunk_size] for i in range(0, len(text), reply.chunk_size)]
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            events = [_chunk(body, {"role": "assistant", "content": ""}, None)]
            events += [_chunk(body, {"content": piece}, None) for piece in pieces]
            events.append(_chunk(body, {}, "stop"))
            if reply.break_after is not None:
                events = events[: reply.break_after + 1]
            for event in events:
                self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
                self.wfile.flush()
            self.wfile.write(b"data: {this is not json\n\n" if reply.break_after is not None else b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

        def _embeddings(self, body: dict[str, Any]) -> None:
            inputs = body.get("input", [])
            inputs = [inputs] if isinstance(inputs, str) else inputs
            data = [{"object": "embedding", "index": i, "embedding": _vector(str(t))} for i, t in enumerate(inputs)]
            self._send_json(200, {"object": "list", "data": data, "model": body.get("model", ""),
                                  "usage": {"prompt_tokens": 0, "total_tokens": 0}})

        def _send_json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json", headers or {})

        def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

    return Handler


def _completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1602720000,
        "model": body.get("model", "test-model"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def _chunk(body: dict[str, Any], delta: dict[str, str], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1602720000,
        "model": body.get("model", "test-model"),
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _vector(text: str, dim: int = 16) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    raw = [b - 127.5 for b in digest[:dim]]
    norm = sum(x * x for x in raw) ** 0.5 or 1.0
    return [x / norm for x in raw]
