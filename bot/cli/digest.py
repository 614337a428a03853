"""``sitrep digest`` and ``sitrep feeds add|list|remove`` on the command line."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot.cli.answer import add_as_of, as_of, engine_for
from bot.cli.dates import add_date_order
from bot.digest.schedule import load_schedules
from bot.feeds.registry import FeedRegistry
from bot.render.text import render_answer
from bot.settings import Settings
from retrieval.errors import ConfigError
from retrieval.progress import Progress
from retrieval.timeparse import check_not_future, parse_when

if TYPE_CHECKING:
    from bot.digest.delivery import DeliveryOutcome, DigestService


def add_commands(subparsers: Any) -> None:
    """Register ``digest`` and ``feeds`` (``subparsers`` from ``add_subparsers``)."""
    p = subparsers.add_parser("digest", help="build the digest of what is new (and post it with --post)")
    p.add_argument("--since", metavar="WHEN", help="start of the window (default: the previous digest, or 24h)")
    p.add_argument("--post", action="store_true", help="post it to the digest channel")
    p.add_argument("--channel", metavar="C", help="the channel (default: the first configured digest channel)")
    add_as_of(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_digest)

    p = subparsers.add_parser("feeds", help="the feeds `sitrep serve` polls")
    actions = p.add_subparsers(dest="feeds_action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="register a feed URL")
    add.add_argument("url", metavar="URL", help="the feed's http(s) address")
    add_date_order(add)
    add.set_defaults(handler=cmd_feeds_add)
    remove = actions.add_parser("remove", help="unregister a feed URL")
    remove.add_argument("url", metavar="URL", help="the feed's http(s) address")
    remove.set_defaults(handler=cmd_feeds_remove)
    listing = actions.add_parser("list", help="the registered feeds and how their last poll went")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_feeds_list)


def cmd_digest(args: argparse.Namespace, settings: Settings) -> int:
    """Build the digest (since the channel's previous one, or ``--since``); print it; post it with --post.

    With ``--as-of`` it is the digest as it would have been built then: of the 24 hours before (or since
    ``--since``), with no previous digest to compare with, and it cannot be posted."""
    # Imported here, not at the top: the Slack client and the answer engine stay out of the commands that
    # only share this module's parser (`sitrep ingest` loads neither).
    from bot.digest.delivery import DeliveryOutcome, DigestService
    from bot.runtime import open_corpus

    when = as_of(args)
    now = when or datetime.now(UTC)
    since = check_not_future(parse_when(args.since, now, name="--since"), now) if args.since else None
    if when is not None and args.post:
        raise ConfigError("--as-of replays the past and cannot be combined with --post.")
    schedules = load_schedules(settings.digest)
    channel = args.channel or (schedules[0].channel if schedules else None)
    if args.post and not channel:
        raise ConfigError("Nowhere to post: set SITREP_DIGEST_CHANNEL or pass --channel C.")
    if args.post and not settings.slack_bot_token:
        raise ConfigError("SLACK_BOT_TOKEN is not set, so the digest cannot be posted.")
    timezone = next((s.timezone for s in schedules if s.channel == channel), settings.timezone)
    corpus = open_corpus(settings)
    try:
        service = DigestService.open(settings.state_location, corpus, engine_for(settings, corpus, when))
        with Progress.for_terminal(quiet=args.json).working("building the digest"):
            digest = service.build(None if when else channel, timezone, now, since=since)
        outcome = _post(service, settings, channel, digest, now) if args.post and channel else None
    finally:
        corpus.close()
    if args.json:
        data = digest.to_json()
        if outcome is not None:
            data["posted"] = {"outcome": outcome.kind.value, "ts": outcome.ts, "error": outcome.error}
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print(render_answer(digest.as_answer()))
        if outcome is not None:
            print(f"\n{_describe(outcome, channel or '')}")
    return 1 if outcome is not None and outcome.kind is DeliveryOutcome.Kind.FAILED else 0


def _post(service: DigestService, settings: Settings, channel: str, digest: Any, now: datetime) -> DeliveryOutcome:
    from slack_sdk import WebClient

    from bot.digest.delivery import close_owner, deliver, new_owner

    client = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    owner = new_owner()
    try:
        return deliver(service.store, client, channel, f"manual:{now:%Y-%m-%dT%H:%M}", digest, owner, now)
    finally:
        close_owner(owner)


def _describe(outcome: DeliveryOutcome, channel: str) -> str:
    from bot.digest.delivery import DeliveryOutcome

    kind = DeliveryOutcome.Kind
    if outcome.kind is kind.POSTED:
        return f"Posted to {channel} (ts {outcome.ts})."
    if outcome.kind is kind.FAILED:
        return f"Could not post to {channel}: {outcome.error}."
    return f"Not posted: a digest was posted to {channel} within the last minute."


def cmd_feeds_add(args: argparse.Namespace, settings: Settings) -> int:
    registry = FeedRegistry.open(settings.state_location, settings.feed_settings)
    added = registry.add(args.url, datetime.now(UTC))
    if args.date_order:
        registry.set_date_order(args.url, args.date_order)
    order = f" (numeric dates read {args.date_order})" if args.date_order else ""
    if added:
        print(f"Added {args.url.strip()}{order}; `sitrep serve` polls it every {settings.feed_poll_minutes:g} "
              "minutes.")
    else:
        print(f"Already registered: {args.url.strip()}{order}")
    return 0


def cmd_feeds_remove(args: argparse.Namespace, settings: Settings) -> int:
    if FeedRegistry.open(settings.state_location, settings.feed_settings).remove(args.url):
        print(f"Removed {args.url.strip()}")
        return 0
    print(f"Not registered: {args.url.strip()}")
    return 1


def cmd_feeds_list(args: argparse.Namespace, settings: Settings) -> int:
    feeds = FeedRegistry.open(settings.state_location, settings.feed_settings).feeds()
    if args.json:
        print(json.dumps({"feeds": [f.to_json() for f in feeds]}, ensure_ascii=False, indent=2))
        return 0
    if not feeds:
        print("No feeds. Add one with `sitrep feeds add URL` or set SITREP_FEEDS.")
    for feed in feeds:
        status = feed.last_status or "not polled yet"
        if feed.failures:
            status += f", {feed.failures} failure(s) in a row: {feed.last_error}; next try {feed.next_check}"
        elif feed.last_error:
            status += f"; {feed.last_error}"
        order = f"  dates {feed.date_order}" if feed.date_order else ""
        print(f"{feed.url}  [{feed.origin}]{order}  {status}")
    return 0
