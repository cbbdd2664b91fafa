"""Database plumbing shared by the rollups and retention: connection, grants, write transaction, lock, errors.

Neither domain owns it, so retention no longer borrows it from the rollups' asset module.

- `erp_connection`: a connection whose search_path is the ERP schema (the SQL constants stay unqualified),
  with the text forms pinned (DateStyle, IntervalStyle, extra_float_digits), a
  lost connection translated to `DatabaseUnavailable` (retryable) and a missing privilege to `MissingGrant`
  (naming the GRANT to run).
- `write_transaction`: the lock FIRST, then the REPEATABLE READ snapshot: a writer (a rollup chunk, a
  retention day) waits for the advisory lock of its aggregate table in a short transaction of its own, and
  only then starts the transaction whose snapshot it reads and writes with, so the snapshot sees everything
  the previous holder committed. The lock is session-level and released right after the transaction.
- `step_errors`: an `ErpPipelinesError` becomes a `dg.Failure` (retryable only for `DatabaseUnavailable`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import dagster as dg
import psycopg
from psycopg import sql

from erp_pipelines.errors import DatabaseUnavailable, ErpPipelinesError, is_connection_lost
from erp_pipelines.resources import ErpDatabase

# Every transaction that writes an aggregate table (a rollup's chunk of days, retention's raw-day and
# aggregate deletes) holds the advisory lock keyed per aggregate table (`hashtext('erp_pipelines:' ||
# table)`; the key text is a parameter). Released by the server when the session dies, so a crash never
# leaves one held.
ADVISORY_LOCK = "SELECT pg_advisory_lock(hashtext(%(lock_key)s))"
ADVISORY_UNLOCK = "SELECT pg_advisory_unlock(hashtext(%(lock_key)s))"
ADVISORY_XACT_LOCK = "SELECT pg_advisory_xact_lock(hashtext(%(lock_key)s))"
LOCK_KEY_PREFIX = "erp_pipelines:"

# The text forms (dates, intervals, floats) pinned so nothing we read depends on a role's settings (the
# fingerprints hash the values themselves: rollups/row_hash.py); set with the ERP schema as search_path
# and the timeouts in the connection's one setup statement (ErpDatabase.connect).
TEXT_FORMS = {"datestyle": "ISO, MDY", "intervalstyle": "postgres", "extra_float_digits": "1"}

# Waiting for the advisory lock, unbounded by lock_timeout: one simple query (no parameters; the key is a
# literal), whose implicit transaction holds the SET LOCAL, so it is one round trip.
LOCK_WITHOUT_TIMEOUT = "SET LOCAL lock_timeout = 0; SELECT pg_advisory_lock(hashtext({lock_key}))"

def lock_key(aggregate_table: str) -> str:
    """The advisory lock's key text of an aggregate table (every writer of it and of its raw table)."""
    return LOCK_KEY_PREFIX + aggregate_table


class MissingGrant(ErpPipelinesError):
    """The database role lacks a privilege; the message names the GRANT that fixes it."""


def missing_grant(
    exc: psycopg.Error, role: str | None, purpose: str, erp_db: ErpDatabase, needs: Mapping[str, str]
) -> MissingGrant:
    """The error for a missing privilege: the failing statement, the object (schema-qualified) and the
    GRANT that fixes it, taken from erp_pipelines/grants.py (the statements `erp-pipelines grants` prints).
    `needs` is kept for callers; the grants come from the one source."""
    from erp_pipelines import grants

    message = (exc.diag.message_primary or str(exc)).strip()
    who = role or "<role>"
    purposes = ["retention"] if purpose.startswith("retention") else ["rollups"]
    target = grants.Target.for_database(erp_db)
    obj, grant = grants.fix_for(message, who, target, purposes)
    statement = (getattr(exc, "__notes__", None) or [""])[-1]
    return MissingGrant(
        f"The database role {who} lacks a privilege {purpose} needs: {message}.",
        where=f"{obj}, database role {who}" + (f", statement: {statement}" if statement else ""),
        fix=f"Run `{grant};` as the object's owner (every grant: `erp-pipelines grants --role {who} "
        f"--for {purposes[0]}`, docs/privileges.md).",
    )


@contextmanager
def erp_connection(erp_db: ErpDatabase, purpose: str, needs: Mapping[str, str]) -> Iterator[psycopg.Connection]:
    """A connection whose search_path is the ERP schema, so the SQL constants can stay unqualified.

    A lost connection raises DatabaseUnavailable (retryable) and a missing privilege MissingGrant (naming
    the GRANT); the open transaction, if any, is rolled back by the server either way.
    """
    role: str | None = None
    try:
        session = {"search_path": sql.Identifier(erp_db.db_schema).as_string(), **TEXT_FORMS}
        with erp_db.connect(purpose, session=session) as conn:
            role = conn.info.user
            yield conn
    except psycopg.errors.InsufficientPrivilege as exc:
        raise missing_grant(exc, role, purpose, erp_db, needs) from None
    except psycopg.OperationalError as exc:
        if not is_connection_lost(exc):
            raise
        raise DatabaseUnavailable(
            f"The connection to the ERP database was lost during {purpose} ({str(exc).strip()}); its "
            "transaction was rolled back, so nothing of it was written.",
            where=f"ERP_DATABASE_URL = {erp_db.safe_url()}",
            fix="Nothing, if the server is back: the step is retried. Otherwise check the server.",
        ) from None


@contextmanager
def step_errors() -> Iterator[None]:
    """`errors.user_errors` for the rollup and retention steps: an ErpPipelinesError becomes a dg.Failure
    carrying its message, retryable only for DatabaseUnavailable; chained to the error so the UI shows it."""
    try:
        yield
    except ErpPipelinesError as exc:
        raise dg.Failure(description=str(exc), allow_retries=isinstance(exc, DatabaseUnavailable)) from exc


@contextmanager
def write_transaction(conn: psycopg.Connection, key: str, *, lock_timeout: bool = False) -> Iterator[None]:
    """Lock, THEN snapshot: one REPEATABLE READ transaction writing under the advisory lock `key`.

    The lock is taken in a short transaction of its own before the snapshot transaction starts, so the
    snapshot sees what the previous holder committed (a snapshot taken before the wait would not). The
    wait is unbounded by lock_timeout unless `lock_timeout` is True (retention: a day that waits too long
    is skipped); statement_timeout still applies. Released right after the transaction ends.
    """
    params = {"lock_key": key}
    with autocommit(conn):  # each one statement, one round trip
        if lock_timeout:
            conn.execute(ADVISORY_LOCK, params)
        else:
            conn.execute(sql.SQL(LOCK_WITHOUT_TIMEOUT).format(lock_key=sql.Literal(key)))
    try:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            yield
    finally:
        if not conn.broken and not conn.closed:
            conn.isolation_level = None
            with autocommit(conn):
                conn.execute(ADVISORY_UNLOCK, params)


@contextmanager
def autocommit(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """Statements outside any transaction block, each its own: one round trip each, where a
    `conn.transaction()` around a single statement costs three (BEGIN, the statement, COMMIT). Only between
    transactions (psycopg refuses to switch inside one); the connection's mode is restored after."""
    before = conn.autocommit
    conn.autocommit = True
    try:
        yield conn
    finally:
        if not conn.closed:  # a lost connection is closed: it keeps its own error (tested)
            conn.autocommit = before
