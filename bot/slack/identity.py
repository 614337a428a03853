"""Who the bot is to Slack: the one Web API client (``SLACK_API_URL``, retries) and the token check.

Nothing here calls Slack at import or construction; ``auth.test`` runs once, in the start-up check of
:mod:`bot.cli.serve` (or else at the first request).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.errors import SlackSetupError
from bot.settings import Settings
from retrieval.neterrors import connection_cause

log = logging.getLogger(__name__)


class _QuietTokenNotice(logging.Filter):
    """Bolt warns that ``SLACK_BOT_TOKEN`` (which it reads from the environment itself) is unused when a client
    is given; sitrep always gives one, so the warning is noise at every start."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()

logging.getLogger("slack_bolt.App").addFilter(_QuietTokenNotice())


def make_client(settings: Settings) -> WebClient:
    """The one Web API client: ``SLACK_API_URL``, retries on HTTP 429 (honouring Retry-After) and on
    connection errors."""
    return WebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=30,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=3),
        ],
    )

def check_auth(client: WebClient) -> dict[str, Any]:
    """Call ``auth.test``; a bad token or an unreachable API becomes one clear :class:`SlackSetupError`."""
    try:
        response = client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown_error") if exc.response is not None else "unknown_error"
        raise SlackSetupError(
            f"Slack rejected SLACK_BOT_TOKEN ({error}); copy the Bot User OAuth Token (xoxb-…) from the app's "
            "OAuth & Permissions page into .env."
        ) from None
    except (SlackClientError, OSError) as exc:
        raise SlackSetupError(
            f"Cannot reach Slack's Web API at {client.base_url}: {connection_cause(exc)}; check the network "
            "and SLACK_API_URL."
        ) from None
    return dict(response.data) if isinstance(response.data, dict) else {}

class BotIdentity:
    """Who the bot is (``auth.test``), asked once: by the start-up check, or else at the first request."""

    def __init__(self, client: WebClient) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._data: dict[str, Any] | None = None

    def check(self) -> dict[str, Any]:
        """``auth.test`` now (SlackSetupError on a bad token); the result is kept for :meth:`authorize`."""
        data = check_auth(self._client)
        with self._lock:
            self._data = data
        return data

    def authorize(self, enterprise_id: str | None, team_id: str | None, user_id: str | None
                  ) -> AuthorizeResult | None:
        """Bolt's ``authorize``: the bot token and ids for every request, without an API call per request."""
        with self._lock:
            data = self._data
        if data is None:
            try:
                data = self.check()
            except SlackSetupError as exc:
                log.error("slack.authorize.failed error=%s", exc)
                return None
        return AuthorizeResult(
            enterprise_id=data.get("enterprise_id") or enterprise_id,
            team_id=data.get("team_id") or team_id,
            bot_user_id=data.get("user_id"),
            bot_id=data.get("bot_id"),
            bot_token=self._client.token,
            user_id=user_id,
        )

