"""Applying one migration the way `prisma migrate deploy` does, with our stronger guarantee where the script allows it.

Prisma inserts the migration's `_prisma_migrations` row (started_at, finished_at NULL), sends the whole script as
one simple query, then adds 1 to `applied_steps_count` and sets `finished_at`; on failure it writes the error to
`logs` and leaves `finished_at` NULL, which blocks the next deploy (P3009). How PostgreSQL runs that one query
depends on the script (`ScriptKind`):

- several statements, no transaction control: one implicit transaction; one transactional statement: its own.
  Here both run, statement by statement, in ONE transaction of ours together with their row: a failure leaves
  no row and no change, and the error names the statement and its line.
- explicit `BEGIN`/`COMMIT`, or a lone non-transactional statement (`CREATE INDEX CONCURRENTLY`, ...): the
  script decides what commits, so it runs exactly as Prisma runs it (autocommit connection, the whole script
  as one simple query: psycopg sends a query without parameters through the simple protocol), and the row is
  written exactly as Prisma writes it, failed row included.

Prisma's advisory lock is held only from just before the row is written until the migration is recorded.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import pq, sql

from erp_pipelines.errors import DatabaseUnavailable, ErpPipelinesError, is_connection_lost, redact
from erp_pipelines.prisma.connection import Connector
from erp_pipelines.prisma.lock import acquire_prisma_lock, release_prisma_lock
from erp_pipelines.prisma.migrations import Migration, ScriptKind, Statement

Log = Callable[[str], None]

IS_APPLIED = """
SELECT EXISTS (SELECT 1 FROM {table} WHERE migration_name = %s AND finished_at IS NOT NULL AND rolled_back_at IS NULL)
"""
# Prisma's record_migration_started: id, checksum, started_at, name; logs and finished_at NULL, 0 steps.
RECORD_STARTED = """
INSERT INTO {table} (id, checksum, migration_name, started_at) VALUES (%(id)s, %(checksum)s, %(name)s, clock_timestamp())
"""
RECORD_SUCCESSFUL_STEP = "UPDATE {table} SET applied_steps_count = applied_steps_count + 1 WHERE id = %(id)s"
RECORD_FINISHED = "UPDATE {table} SET finished_at = clock_timestamp() WHERE id = %(id)s"
RECORD_FAILED = "UPDATE {table} SET logs = %(logs)s WHERE id = %(id)s"
SET_SEARCH_PATH = "SELECT set_config('search_path', %s, %s)"

# Prisma's P3018 text (user-facing ApplyMigrationError), as it is stored in `logs` of a failed row.
PRISMA_FAILURE_LOGS = (
    "A migration failed to apply. New migrations cannot be applied before the error is recovered from. Read more "
    "about how to resolve migration issues in a production database: https://pris.ly/d/migrate-resolve\n\n"
    "Migration name: {name}\n\nDatabase error code: {code}\n\nDatabase error:\n{error}\n"
)


@dataclass
class ApplyOutcome:
    """What happened to one migration, and how long Prisma's lock was waited for and held."""

    name: str
    kind: ScriptKind
    applied: bool = False
    already_applied: bool = False  # recorded by someone else (e.g. a `prisma migrate deploy`) meanwhile
    lock_wait_s: float = 0.0
    lock_held_s: float = 0.0
    failure: ErpPipelinesError | None = None


def _table(schema: str) -> sql.Composable:
    return sql.Identifier(schema, "_prisma_migrations")


def _search_path(conn: psycopg.Connection, schema: str, *, local: bool) -> None:
    conn.execute(SET_SEARCH_PATH, (sql.Identifier(schema).as_string(conn), local))


def _is_applied(conn: psycopg.Connection, schema: str, name: str) -> bool:
    return bool(conn.execute(sql.SQL(IS_APPLIED).format(table=_table(schema)), (name,)).fetchone()[0])


def _message(exc: psycopg.Error) -> str:
    return redact(exc.diag.message_primary or str(exc)).strip()


def apply_migration(db: Connector, migration: Migration, *, log: Log = print) -> ApplyOutcome:
    """Apply one pending migration; see the module docstring for how each kind runs."""
    if migration.kind.atomic_with_history:
        return _apply_in_one_transaction(db, migration, log)
    return _apply_as_prisma_does(db, migration, log)


def _apply_in_one_transaction(db: Connector, migration: Migration, log: Log) -> ApplyOutcome:
    schema, table = db.db_schema, _table(db.db_schema)
    outcome = ApplyOutcome(migration.name, migration.kind)
    row = {"id": str(uuid.uuid4()), "checksum": migration.checksum, "name": migration.name}
    with db.connect("prisma-migrate") as conn:
        with conn.transaction():
            outcome.lock_wait_s = acquire_prisma_lock(conn, timeout_ms=db.lock_timeout_ms, transaction_scoped=True,
                                                      purpose=f"applying migration {migration.name}")
            locked_at = time.monotonic()
            if _is_applied(conn, schema, migration.name):
                outcome.already_applied = True
                return outcome
            _search_path(conn, schema, local=True)
            conn.execute(sql.SQL(RECORD_STARTED).format(table=table), row)
            for stmt in migration.statements:
                try:
                    conn.execute(stmt.text)
                except psycopg.Error as exc:
                    raise _rolled_back_error(migration, stmt, exc) from None
            conn.execute(sql.SQL(RECORD_SUCCESSFUL_STEP).format(table=table), row)
            conn.execute(sql.SQL(RECORD_FINISHED).format(table=table), row)
        outcome.lock_held_s = time.monotonic() - locked_at
    outcome.applied = True
    log(f"Applied {migration.name} ({len(migration.statements)} statements, one transaction with its "
        f"_prisma_migrations row; Prisma's lock held {outcome.lock_held_s * 1000:.0f} ms).")
    return outcome


def _rolled_back_error(migration: Migration, stmt: Statement, exc: psycopg.Error) -> ErpPipelinesError:
    where = f"{migration.path}, line {stmt.line}: {stmt.preview()}"
    if is_connection_lost(exc):
        return DatabaseUnavailable(
            f"The connection was lost while applying migration {migration.name}: {_message(exc)}. The server rolled "
            "it back: no change and no _prisma_migrations row.",
            where=where,
            fix="Run again once the server is back (a RetryPolicy does this by itself).",
        )
    return ErpPipelinesError(
        f"Migration {migration.name} failed at statement {stmt.number}: {_message(exc)}. It was rolled back "
        "completely: no change and no _prisma_migrations row.",
        where=where,
        fix="Fix the cause in the database (e.g. the rows or objects the statement trips on) and run again; if "
        f"the migration was applied by hand, record it with run config mark_applied: [{migration.name}].",
    )


def _apply_as_prisma_does(db: Connector, migration: Migration, log: Log) -> ApplyOutcome:
    schema, table = db.db_schema, _table(db.db_schema)
    outcome = ApplyOutcome(migration.name, migration.kind)
    row = {"id": str(uuid.uuid4()), "checksum": migration.checksum, "name": migration.name}
    with db.connect("prisma-migrate", autocommit=True) as conn:
        _search_path(conn, schema, local=False)
        outcome.lock_wait_s = acquire_prisma_lock(conn, timeout_ms=db.lock_timeout_ms, transaction_scoped=False,
                                                  purpose=f"applying migration {migration.name}")
        locked_at = time.monotonic()
        try:
            if _is_applied(conn, schema, migration.name):
                outcome.already_applied = True
                return outcome
            conn.execute(sql.SQL(RECORD_STARTED).format(table=table), row)
            error = _run_script(conn, migration)
            if error is None:
                conn.execute(sql.SQL(RECORD_SUCCESSFUL_STEP).format(table=table), row)
                conn.execute(sql.SQL(RECORD_FINISHED).format(table=table), row)
            else:
                code, text, stmt = error
                logs = PRISMA_FAILURE_LOGS.format(name=migration.name, code=code, error=text)
                conn.execute(sql.SQL(RECORD_FAILED).format(table=table), {**row, "logs": logs})
                outcome.failure = _recorded_failure(migration, text, stmt)
        finally:
            if not conn.closed and conn.info.transaction_status == pq.TransactionStatus.IDLE:
                release_prisma_lock(conn)
            outcome.lock_held_s = time.monotonic() - locked_at
    if outcome.failure is None:
        outcome.applied = True
        log(f"Applied {migration.name} as `prisma migrate deploy` does ({migration.kind.value}: the whole script as "
            f"one query, outside a transaction of ours); Prisma's lock held {outcome.lock_held_s * 1000:.0f} ms.")
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


def _recorded_failure(migration: Migration, text: str, stmt: Statement | None) -> ErpPipelinesError:
    how = ("a lone statement that cannot run inside a transaction" if migration.kind is ScriptKind.NON_TRANSACTIONAL
           else "its own transaction control (BEGIN/COMMIT)")
    invalid_index = (
        " A failed CREATE INDEX CONCURRENTLY leaves an INVALID index behind: drop it (DROP INDEX CONCURRENTLY ...) "
        "once the cause is fixed, so the next attempt can create it."
        if any(s.node_type == "IndexStmt" and s.non_transactional for s in migration.statements) else ""
    )
    where = str(migration.path) + (f", statement {stmt.number} (line {stmt.line}): {stmt.preview()}" if stmt else "")
    return ErpPipelinesError(
        f"Migration {migration.name} failed: {text.splitlines()[0].removeprefix('ERROR: ')}. It has {how}, so it ran "
        "the way `prisma migrate deploy` runs it (the whole script as one query), not inside one transaction of "
        "ours: whatever it committed before the error stays. It is recorded as failed in _prisma_migrations "
        "(finished_at NULL, the error in logs), as Prisma records it: `prisma migrate deploy` refuses to run (P3009) "
        "and the migrations_up_to_date check fails until it is resolved.",
        where=where,
        fix=f"Fix the cause in the database.{invalid_index} Then run this step with run config resolve_rolled_back: "
        f"[{migration.name}] (or `prisma migrate resolve --rolled-back {migration.name}`) and it is applied again; "
        f"if you completed its changes by hand, use mark_applied: [{migration.name}] (or `prisma migrate resolve "
        f"--applied {migration.name}`) instead.",
    )
