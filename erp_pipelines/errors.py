"""The one exception type for mistakes a user can fix, and the helpers that keep secrets out of messages.

Tracebacks are for bugs. Anything caused by the user's input (a migration file, a setting, a database
that cannot be reached) is raised as `ErpPipelinesError`, whose message says what is wrong, where, and
what to do. Every message passes through `redact` so a password never reaches a log or the UI.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit


class ErpPipelinesError(Exception):
    """A problem the user can fix: what is wrong, where, and what to do."""

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.what = redact(what)
        self.where = redact(where) if where else None
        self.fix = fix
        parts = [self.what]
        if self.where:
            parts.append(f"Where: {self.where}.")
        if fix:
            parts.append(f"What to do: {fix}")
        super().__init__(" ".join(parts))


class DatabaseUnavailable(ErpPipelinesError):
    """The database cannot be reached or dropped the connection (restart, failover, terminated backend).

    Unlike other user errors this one may fix itself: `user_errors` turns it into a *retryable* Failure, so a
    Dagster `RetryPolicy` gets the step through once the server is back.
    """


# SQLSTATEs meaning "the connection is gone", not "the SQL is wrong": class 08 (connection exception),
# 57P01 admin_shutdown (pg_terminate_backend, fast shutdown), 57P02 crash_shutdown, 57P03 cannot_connect_now.
_CONNECTION_LOST_STATES = ("57P01", "57P02", "57P03")


def is_connection_lost(exc: BaseException) -> bool:
    """True for a psycopg OperationalError caused by losing the server, not by the statement itself."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        return False
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = getattr(exc, "sqlstate", None)
    return state is None or state.startswith("08") or state in _CONNECTION_LOST_STATES


_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-z][a-z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<tail>@)", re.I)
_PASSWORD_KV = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'[^']*'|\S+)", re.I)
_known_secrets: set[str] = set()


def remember_secret(secret: str | None) -> None:
    """Register a secret (e.g. a password parsed from a URL) so `redact` removes it wherever it appears."""
    if secret and len(secret) >= 3:
        _known_secrets.add(secret)


def redact(text: str | None) -> str:
    """Remove passwords from URLs, `password=...` pairs and any registered secret."""
    if not text:
        return text or ""
    text = _PASSWORD_IN_URL.sub(lambda m: m.group("head") + ("***" if m.group("pw") else "") + m.group("tail"), text)
    text = _PASSWORD_KV.sub(lambda m: m.group("head") + "***", text)
    for secret in _known_secrets:
        text = text.replace(secret, "***")
    return text


def display_url(url: str) -> str:
    """A URL safe to print: the password replaced by ***, everything else kept for debugging."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable database URL>"
    if parts.password:
        remember_secret(parts.password)
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


class user_errors:  # noqa: N801 - used as a context manager: `with user_errors():`
    """Inside an asset: turn an ErpPipelinesError into `dg.Failure`, so the UI shows the message, not a traceback.

    Failure(allow_retries=False): a bad migration or setting will not fix itself on retry. The exception is
    DatabaseUnavailable (server down or restarting): Failure(allow_retries=True), so a RetryPolicy applies.
    """

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is not None and isinstance(exc, ErpPipelinesError):
            import dagster as dg

            retryable = isinstance(exc, DatabaseUnavailable)
            raise dg.Failure(description=str(exc), allow_retries=retryable) from None
        return False
