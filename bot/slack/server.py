"""Serving the Slack bot: HTTP mode (Starlette + Bolt's adapter under uvicorn) or Socket Mode.

HTTP mode has one endpoint, ``POST /slack/events``, for events, slash commands and interactivity, plus
``GET /healthz``. Every request to ``/slack/events`` must carry a valid Slack signature (v0 HMAC of
``v0:{timestamp}:{body}``, timestamp within 5 minutes) — checked here before Bolt, and again by Bolt's own
``RequestVerification``. There is no setting that turns the check off. Bodies over the size cap get 413,
bodies that are not UTF-8 or not a Slack payload 400, unknown paths 404, and errors a plain 500 with no stack
trace. Events are acknowledged as soon as their signature checks out and they are recorded as durable jobs (the
insert that also drops Slack's retries, :mod:`bot.slack.jobs`), and dispatched to Bolt afterwards; commands and
interactivity are dispatched at once (their listeners only acknowledge and hand work on).
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import signal
import sys
import threading

import uvicorn
from slack_bolt import BoltRequest
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.errors import SlackSetupError
from bot.health import HealthMonitor
from bot.settings import Settings
from bot.slack.app import SlackBot
from retrieval.statedb import is_postgres

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # Slack's payloads are a few KB; anything near a megabyte is not from Slack
EVENTS_PATH = "/slack/events"
RECORD_BATCH = 100  # events recorded in one statement at most


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _is_event_callback(body: bytes) -> bool:
    if not body.startswith(b"{"):
        return False  # commands and interactivity are form-encoded
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    return isinstance(payload, dict) and payload.get("type") == "event_callback"


class _EventRecorder:
    """Records events as jobs (:meth:`SlackBot.accept_events`) in a thread of its own, so the event loop never
    waits for the database, and every event that arrived meanwhile in the same statement: a burst costs one
    commit and one thread hand-off (each hand-off waits for the GIL held by the answer workers), not one each."""

    def __init__(self, bot: SlackBot) -> None:
        self._bot = bot
        self._queue: queue.SimpleQueue[tuple[BoltRequest, asyncio.Future[bool], asyncio.AbstractEventLoop]] = (
            queue.SimpleQueue())
        threading.Thread(target=self._run, name="sitrep-event-recorder", daemon=True).start()

    async def accept(self, request: BoltRequest) -> bool:
        """True when the event is new (recorded now), False for a repeated ``event_id``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._queue.put((request, future, loop))
        return await future

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < RECORD_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                outcomes: list[bool | BaseException] = list(self._bot.accept_events([r for r, _, _ in batch]))
            except Exception as exc:  # a bug: each request answers 500 (and the thread lives on)
                outcomes = [exc] * len(batch)
            for (_, future, loop), outcome in zip(batch, outcomes, strict=True):
                loop.call_soon_threadsafe(_settle, future, outcome)


def _settle(future: asyncio.Future[bool], outcome: bool | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def create_http_app(bot: SlackBot, max_body_bytes: int = MAX_BODY_BYTES) -> Starlette:
    """The ASGI app for HTTP mode."""
    secret = bot.settings.slack_signing_secret
    if not secret:
        raise SlackSetupError(
            "SLACK_SIGNING_SECRET is not set; copy the Signing Secret from the app's Basic Information page "
            "into .env (or set SLACK_APP_TOKEN to use Socket Mode)."
        )
    verifier = SignatureVerifier(secret)
    shared_state = is_postgres(bot.settings.state_location)  # replicas share it: record before acknowledging
    recorder = _EventRecorder(bot) if shared_state else None

    async def events(request: Request) -> Response:
        try:
            return await _events(request)
        except Exception as exc:  # caught here so nothing of it reaches the client, and it is logged once
            log.error("http.error path=%s error=%s", request.url.path, type(exc).__name__, exc_info=exc)
            return PlainTextResponse("Internal Server Error", status_code=500)

    async def _events(request: Request) -> Response:
        try:
            body = await _read_body(request, max_body_bytes)
        except _TooLarge:
            log.warning("slack.request.rejected reason=too_large")
            return JSONResponse({"error": "request body too large"}, status_code=413)
        timestamp = request.headers.get("x-slack-request-timestamp", "")
        signature = request.headers.get("x-slack-signature", "")
        try:
            body.decode("utf-8")  # the verifier decodes the body; Slack only sends UTF-8
        except UnicodeDecodeError:
            log.warning("slack.request.rejected reason=not_utf8")
            return JSONResponse({"error": "invalid request"}, status_code=400)
        # isascii: "²".isdigit() is true, but int("²") fails.
        if not (timestamp.isascii() and timestamp.isdigit()) or not verifier.is_valid(body, timestamp, signature):
            log.warning("slack.request.rejected reason=bad_signature")
            return JSONResponse({"error": "invalid request"}, status_code=401)
        try:
            bolt_request = to_bolt_request(request, body)
        except (ValueError, AttributeError, TypeError):  # signed, but not a payload Bolt can read
            log.warning("slack.request.rejected reason=unreadable_payload")
            return JSONResponse({"error": "invalid request"}, status_code=400)
        if _is_event_callback(body) and recorder is None:
            # One process on the SQLite file: no other replica could take an event over, so it is acknowledged
            # at once, as fast as ever, and recorded (de-duplicated) a moment later, before Bolt runs on it.
            bot.dispatch_later(bolt_request, record=True)
            return Response(status_code=200)
        if _is_event_callback(body) and recorder is not None:
            # Slack wants events acknowledged within 3 s and learns nothing from the answer: record the event,
            # acknowledge, let Bolt run afterwards. Once recorded the event is answered even if this replica
            # dies; Slack's retries are dropped here.
            if await recorder.accept(bolt_request):
                bot.dispatch_later(bolt_request)
            else:
                log.info("slack.event.duplicate event_id=%s", bolt_request.body.get("event_id"))
            return Response(status_code=200)
        # Commands and interactivity are dispatched right here, on the event loop: their listeners only
        # acknowledge (work goes to lazy listeners and the worker pool), so a dispatch takes well under a
        # millisecond, and skipping two thread hand-offs halves the acknowledgement time under load.
        bolt_response = bot.app.dispatch(bolt_request)
        return to_starlette_response(bolt_response)

    health = HealthMonitor.for_state(bot.settings.state_location, lambda: bot.corpus.store)

    async def healthz(request: Request) -> Response:
        # 200 when the state database and Chroma answer, else 503: a load balancer sends no events here then.
        # The checks block (database, Chroma), so they run off the event loop; the report is cached for 2 s.
        report = await run_in_threadpool(health.report)
        body = {"ok": report["ok"], "busy": bot.pool.busy, "waiting": bot.pool.waiting,
                "database": report["database"], "chroma": report["chroma"]}
        return JSONResponse(body, status_code=200 if report["ok"] else 503)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.error("http.error path=%s error=%s", request.url.path, type(exc).__name__, exc_info=exc)
        return PlainTextResponse("Internal Server Error", status_code=500)

    return Starlette(
        debug=False,
        routes=[
            Route(EVENTS_PATH, events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        exception_handlers={Exception: server_error},
    )


def uvicorn_config(app: Starlette, host: str, port: int) -> uvicorn.Config:
    """uvicorn settings for the bot: no access log (it would record every request), quiet server log."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,
        log_level="warning",
        timeout_keep_alive=30,
        server_header=False,
        lifespan="off",
    )


def serve_http(bot: SlackBot) -> None:
    """Serve HTTP mode until interrupted (blocking)."""
    settings = bot.settings
    app = create_http_app(bot)
    log.info("slack.serve mode=http host=%s port=%d", settings.http_host, settings.http_port)
    print(f"sitrep: listening for Slack on http://{settings.http_host}:{settings.http_port}{EVENTS_PATH}", flush=True)
    uvicorn.Server(uvicorn_config(app, settings.http_host, settings.http_port)).run()


def serve_socket_mode(bot: SlackBot) -> None:
    """Serve Socket Mode until interrupted (blocking)."""
    token = bot.settings.slack_app_token
    if not token or not token.startswith("xapp-"):
        raise SlackSetupError(
            "SLACK_APP_TOKEN must be an app-level token (xapp-…) with the connections:write scope; create one "
            "on the app's Basic Information page."
        )
    handler = SocketModeHandler(bot.app, app_token=token)
    log.info("slack.serve mode=socket")
    print("sitrep: connected to Slack in Socket Mode", flush=True)
    handler.start()


def check_credentials(settings: Settings) -> None:
    """The Slack settings the chosen mode needs are present (SlackSetupError naming the missing one)."""
    if not settings.slack_bot_token:
        raise SlackSetupError(
            "SLACK_BOT_TOKEN is not set; install the app to your workspace and copy its Bot User OAuth Token "
            "(xoxb-…) into .env."
        )
    if not settings.slack_app_token and not settings.slack_signing_secret:
        raise SlackSetupError(
            "SLACK_SIGNING_SECRET is not set; copy it from the app's Basic Information page into .env "
            "(or set SLACK_APP_TOKEN to use Socket Mode)."
        )


def _stop_on_sigterm() -> None:
    """SIGTERM (systemd, Docker) ends serving like Ctrl-C, so queued answers are finished and the scheduler is
    stopped on the way out. uvicorn re-raises the signal after its own shutdown; without a handler the
    default action would kill the process on the spot."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))


def serve(bot: SlackBot) -> None:
    """Socket Mode when ``SLACK_APP_TOKEN`` is set, HTTP mode otherwise (blocking)."""
    _stop_on_sigterm()
    if bot.settings.slack_app_token:
        serve_socket_mode(bot)
    else:
        serve_http(bot)
