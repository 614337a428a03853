"""The CLI in a pseudo-terminal, as a person runs it: progress bars, the ingest lock, chat line editing."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.runtime import sample_corpus_path
from retrieval.corpus import Corpus

from conftest import ROOT

UP = "\x1b[A"
# Each test starts the CLI two or three times, and each start loads the embedding model: on a busy two-core
# machine that alone can take most of the default two minutes.
pytestmark = pytest.mark.timeout(360)


class Terminal:
    """``python -m bot.cli.main ARGS`` with stdin, stdout and stderr on one pseudo-terminal."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.master = master
        self.proc = subprocess.Popen([sys.executable, "-m", "bot.cli.main", *args], stdin=slave, stdout=slave,
                                     stderr=slave, env=env, cwd=cwd, close_fds=True, start_new_session=True)
        os.close(slave)
        self.output = ""

    def _read(self, timeout: float) -> bool:
        # poll, not select: late in a long test session the terminal's descriptor can be above select's 1024
        poller = select.poll()
        poller.register(self.master, select.POLLIN)
        if not poller.poll(timeout * 1000):
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the process closed the terminal
            return False
        if not data:
            return False
        self.output += data.decode("utf-8", errors="replace")
        return True

    def expect(self, text: str, timeout: float = 120.0, start: int = 0) -> int:
        """Wait until ``text`` appears in the output after ``start``; its position."""
        deadline = time.monotonic() + timeout
        while text not in self.output[start:]:
            if time.monotonic() > deadline or (not self._read(0.2) and text not in self.output[start:]):
                raise AssertionError(f"{text!r} never appeared; output so far:\n{self.output}")
        return self.output.index(text, start)

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def finish(self, timeout: float = 120.0) -> int:
        deadline = time.monotonic() + timeout
        while self._read(0.2):
            if time.monotonic() > deadline:
                os.killpg(self.proc.pid, signal.SIGKILL)
                raise AssertionError(f"still running; output:\n{self.output}")
        code = self.proc.wait(timeout=30)
        os.close(self.master)
        return code


@pytest.fixture
def term_env(tmp_path: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SITREP_", "SLACK_", "OPENAI_", "CHROMA_"))}
    return {**keep, "SITREP_DATA_DIR": str(tmp_path / "data"), "TERM": "xterm", "SITREP_ANSWER_MODE": "extractive",
            "PYTHONPATH": str(ROOT)}


@contextmanager
def terminal(tmp_path: Path, env: dict[str, str], *args: str) -> Iterator[Terminal]:
    term = Terminal(list(args), env, tmp_path)
    try:
        yield term
    finally:
        if term.proc.poll() is None:
            os.killpg(term.proc.pid, signal.SIGKILL)
            term.proc.wait()


def articles(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for n in range(3):
        (folder / f"report-{n}.txt").write_text(f"Fighting continued in Nad Ali district on day {n}, officials said.\n")
    return folder


def test_ingest_and_reindex_show_progress_on_a_terminal(tmp_path: Path, term_env: dict[str, str]) -> None:
    with terminal(tmp_path, term_env, "ingest", str(articles(tmp_path)), str(sample_corpus_path())) as term:
        assert term.finish() == 0, term.output
    assert "ingesting:" in term.output and "doc/s" in term.output  # tqdm's live count (a JSON file: no total)
    assert "added 4, updated 0, unchanged 0, duplicates 0, failed 0" in term.output
    assert "Traceback" not in term.output

    with terminal(tmp_path, term_env, "ingest", str(tmp_path / "in")) as term:
        assert term.finish() == 0, term.output
    assert re.search(r"\d/3 \[", term.output) and "unchanged 3" in term.output  # out of a total counted ahead

    with terminal(tmp_path, term_env, "reindex") as term:
        assert term.finish() == 0, term.output
    assert "re-embedding:" in term.output and "re-embedded" in term.output and "Traceback" not in term.output


def test_ctrl_c_stops_an_ingest_at_once_and_the_same_command_finishes_it(tmp_path: Path,
                                                                        term_env: dict[str, str]) -> None:
    folder = tmp_path / "wire"
    folder.mkdir()
    for n in range(120):  # a counted folder of more than 64 articles: the cleaning workers start at once
        (folder / f"dispatch-{n:03}.txt").write_text("\n".join(
            f"Dispatch {n}, paragraph {p}: aid convoys reached checkpoint {p * 7 + n} in Nad Ali after {p + 2} hours, "
            f"and district officials counted {n * p + 11} families waiting for food and blankets." for p in range(12)))
    with terminal(tmp_path, term_env, "ingest", str(folder)) as term:
        term.expect("/120 [")
        while not re.search(r"\b([1-9]\d*)/120 \[", term.output):  # some articles are committed
            term.expect("/120 [", start=len(term.output))
        os.killpg(term.proc.pid, signal.SIGINT)  # what Ctrl-C sends: the ingest and its workers
        assert term.finish(timeout=30) == 130, term.output
    assert "ingest stopped. Everything committed so far stays searchable" in term.output
    assert "Traceback" not in term.output and "KeyboardInterrupt" not in term.output

    with terminal(tmp_path, term_env, "ingest", str(folder)) as term:
        assert term.finish() == 0, term.output
    done = re.search(r"added (\d+), updated 0, unchanged (\d+), duplicates 0, failed 0", term.output)
    assert done and int(done[1]) + int(done[2]) == 120 and int(done[2]) > 0, term.output

    with terminal(tmp_path, term_env, "reindex") as term:
        term.expect("re-embedding:")
        os.killpg(term.proc.pid, signal.SIGINT)
        assert term.finish(timeout=30) == 130, term.output
    assert "reindex stopped. Searches still use the index from before" in term.output
    assert "Traceback" not in term.output and "KeyboardInterrupt" not in term.output
    with terminal(tmp_path, term_env, "search", "checkpoint 7 in Nad Ali", "-k", "1") as term:
        assert term.finish() == 0 and "reached checkpoint 7 in Nad Ali" in term.output, term.output


def test_a_second_ingest_says_it_is_waiting_for_the_first(tmp_path: Path, term_env: dict[str, str]) -> None:
    data = Path(term_env["SITREP_DATA_DIR"])
    data.mkdir(parents=True)
    with open(data / "ingest.lock", "a+") as held, terminal(tmp_path, term_env, "ingest", str(articles(tmp_path))
                                                            ) as term:
        fcntl.flock(held, fcntl.LOCK_EX)  # another ingest is running
        term.expect("waiting for another ingest to finish…")
        assert term.proc.poll() is None
        fcntl.flock(held, fcntl.LOCK_UN)
        assert term.finish() == 0, term.output
    assert "added 3" in term.output


def test_chat_recalls_earlier_questions_with_the_up_arrow_across_sessions(
        tmp_path: Path, term_env: dict[str, str], corpus_factory: Callable[..., Corpus]) -> None:
    question = "How many helicopters crashed in Nawa?"
    corpus = corpus_factory(Path(term_env["SITREP_DATA_DIR"]))
    corpus.ingest([str(sample_corpus_path())])
    corpus.close()

    with terminal(tmp_path, term_env, "chat") as term:
        prompt = term.expect("\n> ")
        term.send(question + "\r")
        first = term.expect("Sources:", start=prompt)
        again = term.expect("\n> ", start=first)
        term.send(UP)  # readline puts the last question back on the line
        term.expect(question, start=again + 3)
        term.send("\r")
        term.expect("Sources:", start=again + 3)
        term.expect("\n> ", start=again + 3)
        term.send("/quit\r")
        assert term.finish() == 0, term.output
    assert "^[[A" not in term.output
    assert term.output.count("MI-17") >= 2  # both questions were answered from the article
    history = Path(term_env["SITREP_DATA_DIR"]) / "chat_history"
    assert question in history.read_text(encoding="utf-8")
    assert history.stat().st_mode & 0o077 == 0

    with terminal(tmp_path, term_env, "chat") as term:  # a new session remembers the last one
        prompt = term.expect("\n> ")
        term.send(UP)
        term.expect("/quit", start=prompt)
        term.send(UP)
        term.expect(question, start=prompt)
        term.send("\x15\x04")  # Ctrl-U clears the line, Ctrl-D leaves
        assert term.finish() == 0, term.output
