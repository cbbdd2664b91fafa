"""Prisma Migrate's advisory lock (72707369): waited for with a bound, its holder named.

`prisma migrate deploy` takes `pg_advisory_lock(72707369)` on its connection, gives up after 10 seconds
(`PRISMA_LOCK_WAIT_MS`), and holds it from reading `_prisma_migrations` through its last migration. The
history step does the same (`history.py`); the schema sync holds it only around its own DDL. The wait polls
`pg_try_advisory_(xact_)lock` up to a bound, and a timeout says who holds the lock and what to do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg

from erp_pipelines.errors import ErpPipelinesError

PRISMA_ADVISORY_LOCK = 72707369
PRISMA_LOCK_WAIT_MS = 10_000  # how long `prisma migrate deploy` waits for the lock before giving up
_POLL_S = 0.05

TRY_XACT_LOCK = "SELECT pg_try_advisory_xact_lock(%s)"
TRY_SESSION_LOCK = "SELECT pg_try_advisory_lock(%s)"
UNLOCK_SESSION = "SELECT pg_advisory_unlock(%s)"
# pg_locks splits a bigint advisory key into classid (high 32 bits) and objid (low 32 bits).
LOCK_HOLDERS = """
SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.state, ''),
       coalesce(extract(epoch FROM clock_timestamp() - a.backend_start), 0)::float8,
       coalesce(host(a.client_addr), 'local socket')
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = %s AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.pid <> pg_backend_pid()
"""


@dataclass(frozen=True)
class LockHolder:
    pid: int
    application_name: str
    state: str
    connected_s: float
    client: str

    def describe(self) -> str:
        """Who, not what: the holder's query text may carry data, so it is left out."""
        app = self.application_name or "no application_name"
        return (f"pid {self.pid} (application_name {app!r}, {self.state or 'unknown state'}, from {self.client}, "
                f"connected {self.connected_s:.0f} s ago)")


def lock_holders(conn: psycopg.Connection) -> list[LockHolder]:
    """Other sessions holding Prisma's lock in this database."""
    return [LockHolder(*row) for row in conn.execute(LOCK_HOLDERS, (PRISMA_ADVISORY_LOCK,)).fetchall()]


def acquire_prisma_lock(conn: psycopg.Connection, *, timeout_ms: int, transaction_scoped: bool, purpose: str) -> float:
    """Take Prisma's lock, waiting at most `timeout_ms`; returns the seconds waited.

    `transaction_scoped`: `pg_try_advisory_xact_lock` (released at commit or rollback; call inside a
    transaction), else the session lock `prisma migrate` itself takes (release with `release_prisma_lock`).
    """
    query = TRY_XACT_LOCK if transaction_scoped else TRY_SESSION_LOCK
    started = time.monotonic()
    deadline = started + timeout_ms / 1000
    while True:
        if conn.execute(query, (PRISMA_ADVISORY_LOCK,)).fetchone()[0]:
            return time.monotonic() - started
        if time.monotonic() >= deadline:
            break
        time.sleep(_POLL_S)
    holders = lock_holders(conn)
    named = "; ".join(h.describe() for h in holders) or "a session that has released it since"
    raise ErpPipelinesError(
        f"Prisma's migration lock (advisory lock {PRISMA_ADVISORY_LOCK}) stayed taken for {timeout_ms} ms, so "
        f"{purpose} did not start; nothing was changed by this step. Held by: {named}.",
        where=f"pg_advisory_lock({PRISMA_ADVISORY_LOCK}) in database {conn.info.dbname}",
        fix="Usually a `prisma migrate deploy` (or another run of this step) is working: let it finish and run "
        "again. If that session is stuck, end it (SELECT pg_terminate_backend(<pid>)) and run again; raise "
        "the wait (lock_timeout_ms for the schema sync, prisma_lock_wait_ms for the history step) to wait longer.",
    )


def release_prisma_lock(conn: psycopg.Connection) -> None:
    conn.execute(UNLOCK_SESSION, (PRISMA_ADVISORY_LOCK,))
