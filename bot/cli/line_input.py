"""Reading the chat's questions: with line editing and a saved history on a terminal, plain lines otherwise.

On a terminal, GNU readline (Python's ``readline`` module) gives the usual editing keys, Up/Down to recall
earlier questions and Ctrl-R to search them; the history is kept in a file in the data directory so it
survives between sessions. Piped input is read line by line, unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TextIO

from retrieval.progress import is_terminal

log = logging.getLogger(__name__)

HISTORY_LENGTH = 1000  # questions kept in the history file
# Returns the line without its newline, or None at end of input.
ReadLine = Callable[[str], "str | None"]


def line_reader(stdin: TextIO, stdout: TextIO, history_file: Path | None = None) -> ReadLine:
    """A function that shows a prompt and reads one line: readline-backed when ``stdin`` is this process's
    terminal, else a plain reader of ``stdin`` writing the prompt to ``stdout``."""
    if stdin is sys.stdin and stdout is sys.stdout and is_terminal(stdin) and is_terminal(stdout):
        with contextlib.suppress(ImportError):  # Python built without readline: plain input still works
            return _readline_reader(history_file)
    return _plain_reader(stdin, stdout)


def _plain_reader(stdin: TextIO, stdout: TextIO) -> ReadLine:
    def read(prompt: str) -> str | None:
        stdout.write(prompt)
        stdout.flush()
        line = stdin.readline()
        return line.rstrip("\n") if line else None

    return read


def _readline_reader(history_file: Path | None) -> ReadLine:
    import readline

    readline.clear_history()
    readline.set_history_length(HISTORY_LENGTH)
    if history_file is not None:
        _load_history(readline, history_file)

    def read(prompt: str) -> str | None:
        try:
            line = input(prompt)
        except EOFError:
            return None
        except KeyboardInterrupt:  # Ctrl-C drops the line being typed, like a shell; Ctrl-D leaves
            sys.stdout.write("\n")
            return ""
        if history_file is not None and line.strip():
            _append_history(readline, history_file)
        return line

    return read


def _load_history(readline: ModuleType, path: Path) -> None:
    try:
        if path.exists():
            readline.read_history_file(str(path))
        # Rewriting it trims the file to HISTORY_LENGTH and creates it private: it holds the questions asked.
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        readline.write_history_file(str(path))
        os.chmod(path, 0o600)
    except OSError as exc:
        log.warning("chat history unavailable path=%s error=%s", path, exc.strerror or exc)


def _append_history(readline: ModuleType, path: Path) -> None:
    try:
        readline.append_history_file(1, str(path))
    except OSError as exc:
        log.info("chat history not saved path=%s error=%s", path, exc.strerror or exc)
