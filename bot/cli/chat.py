"""``sitrep chat``: a terminal conversation on the same engine the Slack bot uses.

Each answer streams as it is verified, then its sources are listed. Follow-ups keep their context: the
conversation so far goes to the engine, which rewrites a follow-up into a standalone question.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TextIO

from bot.answer.engine import Engine
from bot.answer.results import Turn
from bot.cli.line_input import line_reader
from bot.render.text import render_sources
from retrieval.errors import SitrepError

log = logging.getLogger(__name__)

MAX_HISTORY_TURNS = 12  # messages of context kept (6 questions and their answers)
_QUIT = frozenset({"/quit", "/exit", "/q", "quit", "exit"})
_RESET = frozenset({"/new", "/reset"})


def run_chat(engine: Engine, stdin: TextIO, stdout: TextIO, *, prompt: str = "> ",
             history_file: Path | None = None) -> int:
    """Read questions line by line from ``stdin`` until EOF or ``/quit``; answer each on ``stdout``.

    On a terminal, lines can be edited and earlier questions recalled (Up arrow), also from earlier
    sessions when ``history_file`` is given.
    """
    read_line = line_reader(stdin, stdout, history_file)
    stdout.write(
        f"sitrep chat ({engine.mode} answers from the ingested articles). "
        "Ask a question; /new starts a new conversation, /quit or Ctrl-D leaves.\n"
    )
    history: list[Turn] = []
    while True:
        line = read_line(prompt)
        if line is None:
            stdout.write("\n")
            return 0
        question = line.strip()
        if not question:
            continue
        if question.lower() in _QUIT:
            return 0
        if question.lower() in _RESET:
            history.clear()
            stdout.write("(new conversation)\n")
            continue
        try:
            stream = engine.ask_stream(question, history=history[-MAX_HISTORY_TURNS:])
            for delta in stream:
                stdout.write(delta)
                stdout.flush()
            answer = stream.result()
        except SitrepError as exc:
            log.info("chat.error kind=%s", type(exc).__name__)
            stdout.write(f"\nsitrep: {exc}\n\n")
            continue
        sources = render_sources(answer)
        stdout.write(f"\n\n{sources}\n\n" if sources else "\n\n")
        cited = tuple(" ".join([c.title, *(q.text for q in c.quotes)]) for c in answer.citations)
        history += [Turn("user", question), Turn("assistant", answer.answer, sources=cited)]
