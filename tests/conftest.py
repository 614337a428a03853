"""Shared fixtures: fixture articles about the Oct 2020 Helmand fighting, and a corpus factory."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from retrieval.corpus import Corpus, CorpusConfig
from retrieval.documents import Article
from retrieval.embeddings import MiniLMEmbedding
from tests.pgfixtures import pg_url, state_location  # noqa: F401  (fixtures for every test module)

FIXTURE_ARTICLES: list[dict[str, str]] = [
    {
        "key": "https://example-news.test/helmand-helicopters",
        "title": "Two army helicopters crash in Helmand's Nawa district",
        "source": "Kabul Ledger",
        "published": "2020-10-14T09:30:00+00:00",
        "text": (
            "Two Afghan National Army MI-17 helicopters crashed in Nawa district of Helmand early on Wednesday, "
            "killing at least nine people, the Ministry of Defense said.\n"
            "The ministry said the helicopters crashed due to technical issues while evacuating wounded soldiers.\n"
            "Local officials said the crash happened near the district centre as fighting continued nearby."
        ),
    },
    {
        "key": "https://wire.test/helmand-casualties",
        "title": "Helicopter collision toll disputed",
        "source": "Frontier Wire",
        "published": "2020-10-14T15:00:00+00:00",
        "text": (
            "A provincial council member said between eight and fifteen people died when two helicopters collided "
            "in Nawa.\n"
            "The Taliban claimed their fighters shot down the aircraft, a claim the defence ministry rejected."
        ),
    },
    {
        "key": "https://example-news.test/stoltenberg",
        "title": "NATO chief urges Taliban to reduce violence",
        "source": "Kabul Ledger",
        "published": "2020-10-15T18:00:00+00:00",
        "text": (
            "NATO Secretary General Jens Stoltenberg met US envoy Zalmay Khalilzad in Brussels on Thursday.\n"
            "Stoltenberg said the Doha talks offer the best chance for peace but the Taliban must reduce the "
            "unacceptable level of violence.\n"
            "He said NATO remains committed to Afghanistan's security."
        ),
    },
    {
        "key": "https://relief.test/displacement-update",
        "title": "Thousands displaced by fighting around Lashkargah",
        "source": "Relief Monitor",
        "published": "2020-10-16T07:00:00+00:00",
        "text": (
            "More than 5,600 families have fled their homes since the Taliban launched attacks on Lashkargah, "
            "the capital of Helmand province, aid agencies said.\n"
            "Most of the displaced families are sheltering in the city and in Nad Ali and Marja districts.\n"
            "UNAMA said civilians including women and children had been killed and injured."
        ),
    },
]


ROOT = Path(__file__).resolve().parent.parent  # the checkout
FIXTURES = Path(__file__).resolve().parent / "fixtures"  # articles and stores the tests read

def fixture_articles() -> list[Article]:
    """The fixture articles as loader output."""
    return [
        Article(
            text=a["text"], source_key=a["key"], title=a["title"], url=a["key"], source=a["source"],
            published=datetime.fromisoformat(a["published"]).astimezone(UTC), kind="url",
        )
        for a in FIXTURE_ARTICLES
    ]


class MemoEmbedder(MiniLMEmbedding):
    """The real model, remembering each text's vector: most tests ingest the same fixture articles, and
    embedding them again in every test would dominate the suite's run time on two cores."""

    def __init__(self) -> None:
        super().__init__()
        self._memo: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if missing:
            self._memo.update(zip(missing, super().embed(missing), strict=True))
        if not texts:
            return super().embed(texts)
        return np.stack([self._memo[t] for t in texts])


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedding:
    """One loaded embedding model for the whole session."""
    return MemoEmbedder()


ENGINES = ("sqlite", "postgresql")


def use_database(monkeypatch: pytest.MonkeyPatch, database_url: str | None) -> None:
    """Point ``sitrep`` runs (and their child processes) at ``database_url``, or at the SQLite file when None."""
    if database_url:
        monkeypatch.setenv("SITREP_DATABASE_URL", database_url)
    else:
        monkeypatch.delenv("SITREP_DATABASE_URL", raising=False)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``both_engines`` run once per state database engine (their corpus's ``database_url``)."""
    marked = metafunc.definition.get_closest_marker("both_engines")
    if marked and not metafunc.definition.get_closest_marker("sqlite_only") and "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_url", ENGINES, indirect=True)


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> str | None:
    """The corpus's PostgreSQL URL (a schema of the test's own), or None for the SQLite file: SQLite unless
    the test is marked ``both_engines``."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def corpus_factory(tmp_path: Path, embedder: MiniLMEmbedding, monkeypatch: pytest.MonkeyPatch,
                   database_url: str | None) -> Iterator[Callable[..., Corpus]]:
    """Build a Corpus in a temporary data dir (the session's model is reused), closed after the test; its
    state in ``database_url`` (PostgreSQL) when the test runs on both engines."""
    monkeypatch.setattr("retrieval.corpus.make_embedder", lambda *a, **k: embedder)
    opened: list[Corpus] = []

    def make(data_dir: Path | None = None, articles: list[Article] | None = None, **config: object) -> Corpus:
        config.setdefault("database_url", database_url)
        corpus = Corpus.open(CorpusConfig(data_dir=data_dir or tmp_path / "data", **config))  # type: ignore[arg-type]
        opened.append(corpus)
        if articles:
            corpus.ingest_articles(articles)
        return corpus

    yield make
    for corpus in opened:
        corpus.close()


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str | None) -> Path:
    """A data directory for ``bot.cli.main.main`` runs (``SITREP_DATA_DIR``), with no stray settings or ``.env``;
    ``SITREP_DATABASE_URL`` is the test's PostgreSQL schema when it runs on both engines."""
    data = tmp_path / "data"
    monkeypatch.setenv("SITREP_DATA_DIR", str(data))
    use_database(monkeypatch, database_url)
    monkeypatch.chdir(tmp_path)
    for name in ("OPENAI_API_KEY", "SLACK_BOT_TOKEN", "CHROMA_HOST"):
        monkeypatch.delenv(name, raising=False)
    return data

@pytest.fixture
def corpus(corpus_factory: Callable[..., Corpus]) -> Corpus:
    """A corpus holding the fixture articles."""
    return corpus_factory(articles=fixture_articles())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ChromaServer:
    """A `chroma run` process on 127.0.0.1 that a test can stop and start again on the same port and path."""

    def __init__(self, path: Path) -> None:
        exe = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
        if exe is None:
            pytest.fail("the `chroma` command (installed with chromadb) is missing")
        self.exe, self.path, self.port = exe, path, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def start(self) -> None:
        log = open(self.path / "server.log", "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(
            [self.exe, "run", "--path", str(self.path / "db"), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(self.address, timeout=0.5):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    pytest.fail(f"chroma run exited: {(self.path / 'server.log').read_text()[-2000:]}")
                time.sleep(0.2)
        self.stop()
        pytest.fail("chroma run did not start within 60 s")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A `chroma run` server on 127.0.0.1, started for the session and stopped after it."""
    server = ChromaServer(tmp_path_factory.mktemp("chroma-server"))
    server.start()
    yield server.address
    server.stop()
