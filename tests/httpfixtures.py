"""A real HTTP server on 127.0.0.1 for tests, in a background thread.

Serve routes with a status, headers, body and an optional delay; conditional GETs (ETag /
If-None-Match, Last-Modified / If-Modified-Since) answer 304 like a real server; every request is
recorded. Use it as a context manager::

    with LocalHTTPServer({"/feed.xml": Route(rss, content_type="application/rss+xml", etag='"v1"')}) as server:
        fetch(server.url("/feed.xml"))
        assert server.requests_to("/feed.xml")[0].headers["user-agent"].startswith("sitrep")

A route may also be a function of the request returning a Route, for answers that change.
Unknown paths get a 404.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

from retrieval.fetchguard import parse_allow
from retrieval.loaders.options import FetchOptions


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received. Header names are lower-case."""

    method: str
    path: str  # with the query string
    headers: dict[str, str]
    body: bytes


@dataclass
class Route:
    """What the server answers on one path."""

    body: bytes | str = b""
    status: int = 200
    content_type: str | None = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering; cut short when the server stops
    etag: str | None = None  # sent, and compared with If-None-Match
    last_modified: str | None = None  # an HTTP date: sent, and compared with If-Modified-Since
    chunk_size: int | None = None  # send the body chunked in pieces of this size, without Content-Length

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Route:
        """A redirect to ``location`` (a path on this server or a full URL)."""
        return cls(status=status, content_type=None, headers={"Location": location})

    def body_bytes(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body

    def not_modified_for(self, request: RecordedRequest) -> bool:
        """Whether a conditional request's validators match, so the answer is 304."""
        if_none_match = request.headers.get("if-none-match")
        if if_none_match is not None:  # RFC 9110: If-None-Match wins over If-Modified-Since
            tags = {tag.strip() for tag in if_none_match.split(",")}
            return self.etag is not None and ("*" in tags or self.etag in tags)
        since = request.headers.get("if-modified-since")
        if since is None or self.last_modified is None:
            return False
        try:
            return parsedate_to_datetime(self.last_modified) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False


Handler = Callable[[RecordedRequest], Route]


class LocalHTTPServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 (or ``host``) with a free port (or ``port``), serving
    :class:`Route` objects."""

    def __init__(self, routes: Mapping[str, Route | Handler] | None = None, *, host: str = "127.0.0.1",
                 port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self._address = (host, port)
        self._tls = tls  # a server-side context: serve https
        self._routes: dict[str, Route | Handler] = dict(routes or {})
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LocalHTTPServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> LocalHTTPServer:
        server = _Server(self._address, _make_handler(self))
        if self._tls is not None:
            server.socket = self._tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        # A short poll interval keeps stop() (and so each test's teardown) fast.
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="local-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; delayed answers still pending are abandoned."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the server is not started")
        host, port = self._server.server_address[:2]
        return f"{'https' if self._tls else 'http'}://{host}:{port}"

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not started")
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        """The full URL of ``path`` on this server."""
        return self.base_url + path

    def route(self, path: str, route: Route | Handler) -> str:
        """Serve ``route`` at ``path`` (replacing any previous one); returns its full URL."""
        with self._lock:
            self._routes[path] = route
        return self.url(path)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in order."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The requests for ``path`` (ignoring the query string)."""
        return [r for r in self.requests if urlsplit(r.path).path == path]

    def _answer(self, request: RecordedRequest) -> Route:
        with self._lock:
            self._requests.append(request)
            route = self._routes.get(request.path) or self._routes.get(urlsplit(request.path).path)
        if route is None:
            return Route(body="not found", status=404, content_type="text/plain")
        return route(request) if callable(route) else route


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Close kept-alive connections so their handler threads end with the server."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that time out or stop reading at a size cap hang up mid-answer: expected here.
        pass


def _make_handler(owner: LocalHTTPServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve()

        def do_HEAD(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = RecordedRequest(
                method=self.command,
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
            )
            route = owner._answer(request)
            if route.delay and owner._stopping.wait(route.delay):
                self.close_connection = True
                return
            if request.method == "GET" and route.not_modified_for(request):
                self._send(304, route, b"")
            else:
                self._send(route.status, route, route.body_bytes())

        def _send(self, status: int, route: Route, payload: bytes) -> None:
            self.send_response(status)
            if route.content_type and status != 304:
                self.send_header("Content-Type", route.content_type)
            if route.etag:
                self.send_header("ETag", route.etag)
            if route.last_modified:
                self.send_header("Last-Modified", route.last_modified)
            for name, value in route.headers.items():
                self.send_header(name, value)
            chunked = route.chunk_size is not None and status != 304
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(payload)) if status != 304 else "0")
            self.end_headers()
            if self.command == "HEAD" or status == 304:
                return
            if not chunked:
                self.wfile.write(payload)
                return
            size = route.chunk_size or len(payload) or 1
            for start in range(0, len(payload), size):
                piece = payload[start:start + size]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output clean; requests are recorded instead

    return _Handler


def closed_port_url(path: str = "/") -> str:
    """A URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


# The server listens on loopback, which sitrep's fetch guard refuses unless it is allowed, the way an
# operator allows an intranet host: tests pass these options (or set SITREP_FETCH_ALLOW=ALLOW_LOCAL).
ALLOW_LOCAL = "127.0.0.1"
LOCAL_FETCH = FetchOptions(allow=parse_allow([ALLOW_LOCAL]))
