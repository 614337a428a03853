"""Structured logging: JSON lines to a file in the data directory, with every configured secret redacted."""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

# Slack and OpenAI token shapes, redacted even when they are not the configured ones.
OWN_LOGGERS = frozenset({"bot", "retrieval", "bench", "__main__"})
_TOKEN_SHAPES = re.compile(r"\b(xox[abposr]-[\w-]{6,}|xapp-[\w-]{6,}|sk-[\w-]{16,})")


class Redactor(logging.Filter):
    """Replaces secret values (and anything shaped like a Slack or OpenAI token) in log records."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 4]

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return _TOKEN_SHAPES.sub("[redacted]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrub(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class OwnRecords(logging.Filter):
    """Passes only sitrep's own records: a library's log lines (slack_sdk, httpx, chromadb, urllib3…) are
    not the user's business on a terminal; they go to the log file, and sitrep reports the failure itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.partition(".")[0] in OWN_LOGGERS


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(data_dir: Path, level: str, secrets: Sequence[str], stderr_level: str = "WARNING") -> None:
    """Log JSON lines to ``data_dir/logs/sitrep.log`` and sitrep's own warnings to stderr, secrets redacted.

    Libraries' records (and Python warnings) go to the file only.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    redactor = Redactor(secrets)
    handlers: list[logging.Handler] = []
    try:
        log_dir = data_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(log_dir / "sitrep.log", maxBytes=10 << 20, backupCount=3)
        file_handler.setLevel(level)
        file_handler.setFormatter(JsonFormatter())
        handlers.append(file_handler)
    except OSError:
        pass  # an unwritable data dir is reported by the command that needs it
    console = logging.StreamHandler()
    console.setLevel(stderr_level)
    console.setFormatter(logging.Formatter("sitrep: %(levelname)s %(name)s: %(message)s"))
    console.addFilter(OwnRecords())
    handlers.append(console)
    for handler in handlers:
        handler.addFilter(redactor)
        root.addHandler(handler)
    root.setLevel(min(logging.getLevelName(level), logging.getLevelName(stderr_level)))
    logging.captureWarnings(True)
    for noisy in ("httpx", "httpcore", "chromadb", "urllib3", "apscheduler", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Parsers warn about every malformed file; each failure already reaches the user as a LoadFailure.
    for parser in ("pypdf", "trafilatura", "htmldate", "courlan", "justext"):
        logging.getLogger(parser).setLevel(logging.ERROR)
