"""Applying one migration the way `prisma migrate deploy` does, with our stronger guarantee where the script allows it.

Prisma inserts the migration's `_prisma_migrations` row (started_at, finished_at NULL), sends the whole script as
one simple query, then adds 1 to `applied_steps_count` and sets `finished_at`; on failure it writes the error to
`logs` and leaves `finished_at` NULL, which blocks the next deploy (P3009). How PostgreSQL runs that one query
depends on the script (`ScriptKind`):

- several statements, no transaction control: one implicit transaction; one transactional statement: its own.
  Here both run, statement by statement, in ONE transaction of ours together with their row, with our
  `lock_timeout`/`statement_timeout`: a failure leaves no row and no change, and the error names the statement
  and its line (deliberately stronger than Prisma, whose row of a failed script stays behind).
- explicit `BEGIN`/`COMMIT`, or a lone non-transactional statement (`CREATE INDEX CONCURRENTLY`, ...): the
  script decides what commits, so it runs exactly as Prisma runs it (the whole script as one simple query:
  psycopg sends a query without parameters through the simple protocol), WITHOUT our timeouts (Prisma sets
  none: a CONCURRENTLY build waits for old transactions instead of being cancelled into an INVALID index),
  and the row is written exactly as Prisma writes it, failed row included. While it runs, a watcher on a
  second connection logs who it waits for (`pg_blocking_pids`), so the wait is visible.

Every migration runs on the caller's connection, which holds Prisma's session lock (`history.py`).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import pq, sql

from erp_pipelines.errors import DatabaseUnavailable, ErpPipelinesError, is_connection_lost, redact
from erp_pipelines.prisma.connection import Connector
from erp_pipelines.prisma.migrations import Migration, ScriptKind, Statement

Log = Callable[[str], None]

# Prisma's record_migration_started: id, checksum, started_at, name; logs and finished_at NULL, 0 steps.
RECORD_STARTED = """
INSERT INTO {table} (id, checksum, migration_name, started_at) VALUES (%(id)s, %(checksum)s, %(name)s, clock_timestamp())
"""
RECORD_SUCCESSFUL_STEP = "UPDATE {table} SET applied_steps_count = applied_steps_count + 1 WHERE id = %(id)s"
RECORD_FINISHED = "UPDATE {table} SET finished_at = clock_timestamp() WHERE id = %(id)s"
RECORD_FAILED = "UPDATE {table} SET logs = %(logs)s WHERE id = %(id)s"
SET_SEARCH_PATH = "SELECT set_config('search_path', %s, %s)"
# Prisma runs scripts with the server's defaults; ours are set per session by `Connector.connect`.
READ_TIMEOUTS = "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')"
SET_TIMEOUTS = "SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)"
# Who the migration's session waits for, and for how long (no query text: it may carry data).
BLOCKERS = """
SELECT b.pid, coalesce(b.application_name, ''), coalesce(b.state, ''),
       coalesce(extract(epoch FROM clock_timestamp() - b.xact_start), 0)::float8,
       coalesce(extract(epoch FROM clock_timestamp() - w.query_start), 0)::float8,
       coalesce(w.wait_event_type || ':' || w.wait_event, '')
FROM pg_stat_activity w
CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocking(pid)
JOIN pg_stat_activity b ON b.pid = blocking.pid
WHERE w.pid = %s
ORDER BY b.pid
"""
WATCH_EVERY_S = 1.0
REPEAT_LOG_EVERY_S = 15.0

# Prisma's P3018 text (user-facing ApplyMigrationError), as it is stored in `logs` of a failed row.
PRISMA_FAILURE_LOGS = (
    "A migration failed to apply. New migrations cannot be applied before the error is recovered from. Read more "
    "about how to resolve migration issues in a production database: https://pris.ly/d/migrate-resolve\n\n"
    "Migration name: {name}\n\nDatabase error code: {code}\n\nDatabase error:\n{error}\n"
)
# SQLSTATEs of a statement that waited too long or lost a race: nothing wrong with the SQL or the data.
_TRANSIENT = {"55P03": "lock_timeout", "57014": "statement_timeout (or a cancel)", "40P01": "a deadlock",
              "40001": "a serialization failure"}


@dataclass
class ApplyOutcome:
    """What happened to one migration, and how long it ran."""

    name: str
    kind: ScriptKind
    applied: bool = False
    lock_held_s: float = 0.0  # how long this migration ran (Prisma's lock is held throughout the whole step)
    failure: ErpPipelinesError | None = None
    waited_for: tuple[int, ...] = ()  # pids the script waited for (as-Prisma scripts only)


def _table(schema: str) -> sql.Composable:
    return sql.Identifier(schema, "_prisma_migrations")


def _search_path(conn: psycopg.Connection, schema: str, *, local: bool) -> None:
    conn.execute(SET_SEARCH_PATH, (sql.Identifier(schema).as_string(conn), local))


def _message(exc: psycopg.Error) -> str:
    return redact(exc.diag.message_primary or str(exc)).strip()


def apply_migration(db: Connector, conn: psycopg.Connection, migration: Migration, *, log: Log = print,
                    late: bool = False) -> ApplyOutcome:
    """Apply one pending migration on `conn` (autocommit, holding Prisma's lock); see the module docstring."""
    if migration.kind.atomic_with_history:
        return _apply_in_one_transaction(db, conn, migration, log, late)
    return _apply_as_prisma_does(db, conn, migration, log, late)


def _apply_in_one_transaction(db: Connector, conn: psycopg.Connection, migration: Migration, log: Log,
                              late: bool) -> ApplyOutcome:
    schema, table = db.db_schema, _table(db.db_schema)
    outcome = ApplyOutcome(migration.name, migration.kind)
    row = {"id": str(uuid.uuid4()), "checksum": migration.checksum, "name": migration.name}
    started = time.monotonic()
    with conn.transaction():
        _search_path(conn, schema, local=True)
        conn.execute(sql.SQL(RECORD_STARTED).format(table=table), row)
        for stmt in migration.statements:
            try:
                conn.execute(stmt.text)
            except psycopg.Error as exc:
                raise _rolled_back_error(migration, stmt, exc, late) from None
        conn.execute(sql.SQL(RECORD_SUCCESSFUL_STEP).format(table=table), row)
        conn.execute(sql.SQL(RECORD_FINISHED).format(table=table), row)
    outcome.lock_held_s = time.monotonic() - started
    outcome.applied = True
    log(f"Applied {migration.name} ({len(migration.statements)} statements, one transaction with its "
        f"_prisma_migrations row; {outcome.lock_held_s * 1000:.0f} ms).")
    return outcome


def _advice(migration: Migration, code: str, late: bool, *, recorded_failed: bool) -> str:
    """What to do about a failed statement, by what its SQLSTATE says the fault is."""
    name = migration.name
    again = (f"run again with resolve_rolled_back: [{name}] (or `prisma migrate resolve --rolled-back {name}`)"
             if recorded_failed else "run again")
    if code in _TRANSIENT:
        return (f"The statement was stopped by {_TRANSIENT[code]}, not by a fault in the SQL: another session held a "
                f"lock it needed. Find that session (pg_stat_activity, pg_locks), let it finish, then {again}.")
    if code[:2] in ("22", "23"):
        return (f"Rows in the database do not fit the statement (SQLSTATE {code}). Either correct those rows, then "
                f"{again}; or, if the migration must handle them, correct its SQL before it is applied (it is not "
                "applied here) and write a new migration instead if it is already applied on another database.")
    return sql_fault_advice(migration, code, late, again)


def sql_fault_advice(migration: Migration, code: str, late: bool, again: str = "run again") -> str:
    """What to do about a statement whose fault is in the SQL or in what it expects of the schema."""
    name = migration.name
    late_note = (" It sorts before the baseline but had no row: a late-merged migration, applied as Prisma applies "
                 "it." if late else "")
    return (f"The fault is in the migration's SQL or in what it expects of the schema (SQLSTATE {code}).{late_note} "
            f"It is not applied here. If no other database has applied it yet, correct the script before it is "
            f"applied, then {again}. If another database already applied it, leave the file as it is: bring this "
            f"database to the state the migration expects, or, if this database already has its changes, record it "
            f"with mark_applied: [{name}]; further corrections go into a new migration.")


def _rolled_back_error(migration: Migration, stmt: Statement, exc: psycopg.Error, late: bool) -> ErpPipelinesError:
    where = f"{migration.path}, statement {stmt.number} (line {stmt.line}): {stmt.preview()}"
    if is_connection_lost(exc):
        return DatabaseUnavailable(
            f"The connection was lost while applying migration {migration.name}: {_message(exc)}. The server rolled "
            "it back: no change and no _prisma_migrations row.",
            where=where,
            fix="Run again once the server is back (a RetryPolicy does this by itself).",
        )
    return ErpPipelinesError(
        f"Migration {migration.name} failed at statement {stmt.number} (line {stmt.line}): {_message(exc)}. It "
        "was rolled back completely: no change and no _prisma_migrations row.",
        where=where,
        fix=_advice(migration, exc.sqlstate or "", late, recorded_failed=False),
    )


class _WaitWatcher:
    """Logs, from a second connection, who the migration's session waits for while its script runs."""

    def __init__(self, db: Connector, pid: int, migration: Migration, log: Log) -> None:
        self.db, self.pid, self.migration, self.log = db, pid, migration, log
        self.stop = threading.Event()
        self.seen: dict[int, float] = {}  # pid -> when last logged
        self.thread = threading.Thread(target=self._run, name=f"wait-watch-{pid}", daemon=True)

    def __enter__(self) -> _WaitWatcher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)

    def _run(self) -> None:
        try:
            with self.db.connect("prisma-migrate-watch", autocommit=True) as watch:
                while not self.stop.wait(WATCH_EVERY_S):
                    for pid, app, state, xact_s, waited_s, event in watch.execute(BLOCKERS, (self.pid,)).fetchall():
                        now = time.monotonic()
                        if now - self.seen.get(pid, -REPEAT_LOG_EVERY_S) < REPEAT_LOG_EVERY_S:
                            continue
                        self.seen[pid] = now
                        self.log(
                            f"Waiting: {self.migration.name} (run as Prisma runs it, without our lock_timeout/"
                            f"statement_timeout) has waited {waited_s:.0f} s ({event}) for pid {pid} "
                            f"(application_name {app or 'none'!r}, {state or 'unknown state'}, transaction open "
                            f"{xact_s:.0f} s). It goes on as soon as that transaction ends; to stop waiting, end it "
                            f"(SELECT pg_terminate_backend({pid})) or cancel this run.")
        except (psycopg.Error, ErpPipelinesError) as exc:  # the watcher only informs: never fail the migration
            self.log(f"Note: could not watch {self.migration.name}'s waits: {redact(str(exc))}")


def _apply_as_prisma_does(db: Connector, conn: psycopg.Connection, migration: Migration, log: Log,
                          late: bool) -> ApplyOutcome:
    schema, table = db.db_schema, _table(db.db_schema)
    outcome = ApplyOutcome(migration.name, migration.kind)
    row = {"id": str(uuid.uuid4()), "checksum": migration.checksum, "name": migration.name}
    started = time.monotonic()
    _search_path(conn, schema, local=False)
    ours = conn.execute(READ_TIMEOUTS).fetchone()
    conn.execute(sql.SQL(RECORD_STARTED).format(table=table), row)
    conn.execute(SET_TIMEOUTS, ("0", "0"))
    try:
        with _WaitWatcher(db, conn.info.backend_pid, migration, log) as watcher:
            error = _run_script(conn, migration)
        outcome.waited_for = tuple(sorted(watcher.seen))
    finally:
        if not conn.closed and conn.info.transaction_status == pq.TransactionStatus.IDLE:
            conn.execute(SET_TIMEOUTS, ours)
    if error is None:
        conn.execute(sql.SQL(RECORD_SUCCESSFUL_STEP).format(table=table), row)
        conn.execute(sql.SQL(RECORD_FINISHED).format(table=table), row)
    else:
        code, text, stmt = error
        logs = PRISMA_FAILURE_LOGS.format(name=migration.name, code=code, error=text)
        conn.execute(sql.SQL(RECORD_FAILED).format(table=table), {**row, "logs": logs})
        outcome.failure = _recorded_failure(migration, code, text, stmt, late)
    outcome.lock_held_s = time.monotonic() - started
    if outcome.failure is None:
        outcome.applied = True
        log(f"Applied {migration.name} as `prisma migrate deploy` does ({migration.kind.value}: the whole script as "
            f"one query, outside a transaction of ours, without our timeouts; {outcome.lock_held_s * 1000:.0f} ms).")
    else:
        log(f"FAILED: {outcome.failure}")
    return outcome


def _run_script(conn: psycopg.Connection, migration: Migration) -> tuple[str, str, Statement | None] | None:
    """Send the whole script as one simple query; None on success, else (SQLSTATE, error text, statement)."""
    try:
        conn.execute(migration.sql)
    except psycopg.Error as exc:
        if is_connection_lost(exc):
            raise DatabaseUnavailable(
                f"The connection was lost while applying migration {migration.name}, which runs outside a single "
                f"transaction: {_message(exc)}. Its _prisma_migrations row is left unfinished, as Prisma leaves it.",
                where=str(migration.path),
                fix="Once the server is back, check what the migration did; then run with resolve_rolled_back: "
                f"[{migration.name}] to apply it again, or mark_applied: [{migration.name}] if it completed.",
            ) from None
        if conn.info.transaction_status != pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")  # the script's own BEGIN left an aborted transaction
        diag = exc.diag
        text = "\n".join(
            [f"ERROR: {_message(exc)}"]
            + ([f"DETAIL: {redact(diag.message_detail)}"] if diag.message_detail else [])
            + ([f"HINT: {diag.message_hint}"] if diag.message_hint else [])
        )
        return exc.sqlstate or "", text, _statement_at(migration, diag.statement_position)
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        conn.execute("ROLLBACK")
        return "25001", "ERROR: the script left a transaction open (BEGIN without COMMIT); it was rolled back", None
    return None


def _statement_at(migration: Migration, position: str | None) -> Statement | None:
    """The statement holding a 1-based character position of the whole script, as PostgreSQL reports it."""
    if len(migration.statements) == 1:
        return migration.statements[0]
    if not position or not position.isdigit():
        return None
    line = migration.sql.count("\n", 0, int(position) - 1) + 1
    candidates = [s for s in migration.statements if s.line <= line]
    return candidates[-1] if candidates else None


def _recorded_failure(migration: Migration, code: str, text: str, stmt: Statement | None,
                      late: bool) -> ErpPipelinesError:
    how = ("a lone statement that cannot run inside a transaction" if migration.kind is ScriptKind.NON_TRANSACTIONAL
           else "its own transaction control (BEGIN/COMMIT)")
    invalid_index = (
        " A failed CREATE INDEX CONCURRENTLY leaves an INVALID index behind: drop it (DROP INDEX CONCURRENTLY ...) "
        "before running again, so the next attempt can create it."
        if any(s.node_type == "IndexStmt" and s.non_transactional for s in migration.statements) else ""
    )
    at = f" at statement {stmt.number} (line {stmt.line})" if stmt else ""
    where = str(migration.path) + (f", statement {stmt.number} (line {stmt.line}): {stmt.preview()}" if stmt else "")
    return ErpPipelinesError(
        f"Migration {migration.name} failed{at}: {text.splitlines()[0].removeprefix('ERROR: ')}. It has {how}, so "
        "it ran the way `prisma migrate deploy` runs it (the whole script as one query), not inside one transaction "
        "of ours: whatever it committed before the error stays. It is recorded as failed in _prisma_migrations "
        "(finished_at NULL, the error in logs), as Prisma records it: `prisma migrate deploy` refuses to run (P3009) "
        "and the migrations_up_to_date check fails until it is resolved.",
        where=where,
        fix=_advice(migration, code, late, recorded_failed=True) + invalid_index + (
            f" If you completed its changes by hand instead, use mark_applied: [{migration.name}] (or `prisma migrate "
            f"resolve --applied {migration.name}`)." if code in _TRANSIENT or code[:2] in ("22", "23") else ""),
    )
