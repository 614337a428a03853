"""Why a connection failed, in words a user can act on.

Client libraries wrap the operating system's error in their own exceptions (chromadb raises a bare
``ValueError``, slack_sdk a ``URLError``, openai an ``APIConnectionError``); the cause is further down the
chain of ``__cause__``/``__context__`` and exception arguments.
"""

from __future__ import annotations

import errno
import socket
import ssl

_MAX_DEPTH = 12

_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused: nothing is listening at that address and port",
    errno.ECONNRESET: "the connection was reset by the other side",
    errno.EHOSTUNREACH: "no route to that host",
    errno.ENETUNREACH: "the network is unreachable",
    errno.ETIMEDOUT: "the connection timed out",
    errno.EADDRNOTAVAIL: "that address is not available from this machine",
}


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception behind it (causes, contexts, exceptions passed as arguments)."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < _MAX_DEPTH:
        current = todo.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
        todo += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        reason = getattr(current, "reason", None)  # urllib's URLError keeps the OS error here
        if isinstance(reason, BaseException):
            todo.append(reason)
    return seen


def _words(exc: BaseException) -> str | None:
    if isinstance(exc, socket.gaierror):
        return "the host name was not found (DNS); check the spelling"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "its TLS certificate could not be verified"
    if isinstance(exc, ssl.SSLError):
        return "the TLS handshake failed (is it plain http?)"
    if isinstance(exc, TimeoutError):
        return "the connection timed out"
    if isinstance(exc, OSError) and exc.errno in _ERRNO_WORDS:
        return _ERRNO_WORDS[exc.errno]
    name = type(exc).__name__.lower()
    if "timeout" in name:
        return "the connection timed out"
    return None


def connection_cause(exc: BaseException) -> str:
    """The deepest recognisable cause of a failed connection, as a phrase (``"connection refused: …"``).

    Falls back to the innermost exception's own message when no cause is recognised.
    """
    chain = _chain(exc)
    for current in reversed(chain):
        words = _words(current)
        if words:
            return words
    innermost = chain[-1]
    detail = " ".join(str(innermost).split())[:160]
    return detail or type(innermost).__name__
