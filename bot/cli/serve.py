"""``sitrep serve``: the Slack bot with feed polling and the daily digest scheduler."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from bot.settings import Settings

log = logging.getLogger(__name__)


def add_commands(subparsers: Any) -> None:
    """Register ``serve`` on the ``sitrep`` command line (``subparsers`` from ``add_subparsers``)."""
    parser = subparsers.add_parser(
        "serve",
        help="run the Slack bot (Socket Mode if SLACK_APP_TOKEN is set, else HTTP) with feeds and digests",
    )
    parser.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Check the Slack credentials, open the corpus and engine, start the scheduler, serve until stopped."""
    from bot.answer.engine import Engine
    from bot.digest.scheduler import start_scheduler
    from bot.retention import start_retention
    from bot.runtime import open_corpus
    from bot.slack.app import SlackBot
    from bot.slack.identity import BotIdentity, make_client
    from bot.slack.server import check_credentials, serve

    # Credentials first: a bad token fails in a second, before the corpus and the model are loaded.
    check_credentials(settings)
    client = make_client(settings)
    identity = BotIdentity(client)
    who = identity.check()
    corpus = open_corpus(settings)
    bot: SlackBot | None = None
    scheduler = None
    try:
        engine = Engine(settings.llm, corpus)
        bot = SlackBot(settings, engine, corpus, client=client, identity=identity)
        print(f"sitrep: signed in to Slack workspace {who.get('team')!s} as @{who.get('user')!s}; "
              f"answers in {engine.mode} mode", flush=True)
        scheduler = start_scheduler(settings, corpus, engine, bot.client)
        start_retention(scheduler.scheduler, bot.state)
        serve(bot)
    finally:
        if scheduler is not None:
            scheduler.shutdown()
        if bot is not None:
            bot.close()
        corpus.close()
    return 0
