"""`_prisma_migrations`, kept exactly the way Prisma Migrate reads and writes it.

A migration counts as applied when it has a row with `finished_at` set and `rolled_back_at` null; a row
with both null is a failed attempt that blocks `prisma migrate deploy` (P3009). This module:

- baselines: records every migration up to the baseline as applied without running it, with the row
  `prisma migrate resolve --applied` writes (`logs` '', `started_at` = `finished_at`, `applied_steps_count` 0);
- resolves failed attempts: automatically only those of migrations the baseline covers (the ERP's legacy
  case), and those of later migrations only when named in `resolve_rolled_back` (as
  `prisma migrate resolve --rolled-back` does); any other failed attempt is left and reported, and then no
  later migration is applied, as Prisma would refuse to;
- applies later migrations in Prisma's order (`apply.py` says how each kind of script runs).

Reading, validation and reporting happen without Prisma's advisory lock; it is held only around each
history write and each migration's DDL with its row (`lock.py`). A recorded row is never rewritten, except
`rolled_back_at` of a failed attempt, as Prisma itself does. This module imports nothing from Dagster.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import sql

from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.prisma.apply import ApplyOutcome, apply_migration
from erp_pipelines.prisma.connection import Connector
from erp_pipelines.prisma.lock import acquire_prisma_lock
from erp_pipelines.prisma.migrations import Migration, MigrationsFolder, ScriptKind

Log = Callable[[str], None]

# Prisma's own DDL for the table (schema-engine, PostgreSQL flavour).
CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS {table} (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)
"""
# Column name -> format_type() of Prisma's table, for the "tables present" check.
PRISMA_COLUMNS = {
    "id": "character varying(36)",
    "checksum": "character varying(64)",
    "finished_at": "timestamp with time zone",
    "migration_name": "character varying(255)",
    "logs": "text",
    "rolled_back_at": "timestamp with time zone",
    "started_at": "timestamp with time zone",
    "applied_steps_count": "integer",
}
TABLE_EXISTS = "SELECT to_regclass(%s) IS NOT NULL"
READ_ROWS = """
SELECT id, migration_name, checksum, started_at, finished_at, rolled_back_at, logs, applied_steps_count
FROM {table} ORDER BY started_at, migration_name
"""
# `prisma migrate resolve --rolled-back`: rolled_back_at = now on the failed attempts, nothing else.
MARK_ROLLED_BACK = """
UPDATE {table} SET rolled_back_at = now()
WHERE id = ANY(%(ids)s) AND finished_at IS NULL AND rolled_back_at IS NULL
RETURNING migration_name
"""
# `prisma migrate resolve --applied`: one timestamp for started_at and finished_at, logs '', no steps.
MARK_APPLIED = """
INSERT INTO {table} (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at,
                     applied_steps_count)
VALUES (%(id)s, %(checksum)s, now(), %(name)s, '', NULL, now(), 0)
"""


@dataclass(frozen=True)
class HistoryRow:
    id: str
    name: str
    checksum: str
    started_at: datetime
    finished_at: datetime | None
    rolled_back_at: datetime | None
    logs: str | None
    applied_steps_count: int

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def rolled_back(self) -> bool:
        return self.rolled_back_at is not None

    @property
    def applied(self) -> bool:
        return self.finished and not self.rolled_back

    @property
    def unfinished(self) -> bool:
        """A failed (or interrupted) attempt: blocks `prisma migrate deploy` with P3009 until resolved."""
        return not self.finished and not self.rolled_back


@dataclass
class HistoryResult:
    created_table: bool = False
    resolved_failed: list[str] = field(default_factory=list)  # covered by the baseline: resolved automatically
    resolved_rolled_back: list[str] = field(default_factory=list)  # named in resolve_rolled_back
    baselined: list[str] = field(default_factory=list)
    marked_applied: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    outcomes: list[ApplyOutcome] = field(default_factory=list)
    failed: ErpPipelinesError | None = None  # a migration that ran the way Prisma runs it and failed (row written)
    blocked_by: list[str] = field(default_factory=list)  # failed attempts left unresolved: nothing later applied
    unrunnable_applied: list[str] = field(default_factory=list)  # recorded as applied, PostgreSQL cannot run it
    checksum_mismatches: list[str] = field(default_factory=list)
    not_in_folder: list[str] = field(default_factory=list)
    rows: list[HistoryRow] = field(default_factory=list)

    def changed(self) -> bool:
        return bool(self.created_table or self.resolved_failed or self.resolved_rolled_back or self.baselined
                    or self.marked_applied or self.applied or self.failed)


def _table(schema: str) -> sql.Composable:
    return sql.Identifier(schema, "_prisma_migrations")


def read_history(conn: psycopg.Connection, schema: str) -> list[HistoryRow]:
    qualified = sql.Identifier(schema, "_prisma_migrations").as_string(conn)
    if not conn.execute(TABLE_EXISTS, (qualified,)).fetchone()[0]:
        return []
    rows = conn.execute(sql.SQL(READ_ROWS).format(table=_table(schema))).fetchall()
    return [HistoryRow(*r) for r in rows]


def applied_names(rows: Iterable[HistoryRow]) -> set[str]:
    return {r.name for r in rows if r.applied}


def checksum_matches(migration: Migration, recorded: str) -> bool:
    """Prisma's tolerant comparison: the file as it is, or with its line ends swapped, matches the row."""
    return recorded in migration.accepted_checksums


def _mark_applied(conn: psycopg.Connection, schema: str, migration: Migration) -> None:
    conn.execute(sql.SQL(MARK_APPLIED).format(table=_table(schema)),
                 {"id": str(uuid.uuid4()), "checksum": migration.checksum, "name": migration.name})


@dataclass(frozen=True)
class _Writes:
    """What the bookkeeping transaction writes, decided from a read without the lock."""

    auto_resolve: tuple[str, ...]  # ids of failed attempts of baseline-covered migrations
    named_resolve: tuple[str, ...]  # ids of failed attempts named in resolve_rolled_back
    baseline: tuple[Migration, ...]
    mark: tuple[Migration, ...]

    def any(self) -> bool:
        return bool(self.auto_resolve or self.named_resolve or self.baseline or self.mark)


def _plan_writes(rows: Sequence[HistoryRow], covered: Sequence[Migration], mark: Sequence[Migration],
                 resolve: Sequence[str]) -> _Writes:
    done = applied_names(rows)
    covered_names = {m.name for m in covered}
    return _Writes(
        auto_resolve=tuple(r.id for r in rows if r.unfinished and r.name in covered_names),
        named_resolve=tuple(r.id for r in rows if r.unfinished and r.name in resolve and r.name not in covered_names),
        baseline=tuple(m for m in covered if m.name not in done),
        mark=tuple(m for m in mark if m.name not in done and m.name not in covered_names),
    )


def _write_bookkeeping(db: Connector, covered: Sequence[Migration],
                       mark: Sequence[Migration], resolve: Sequence[str], result: HistoryResult, log: Log) -> None:
    """Create the table, resolve failed attempts, record baseline and mark_applied rows: one short
    transaction under Prisma's lock, re-deciding from rows read under the lock (a concurrent deploy wins)."""
    schema = db.db_schema
    table = _table(schema)
    with db.connect("prisma-history") as conn, conn.transaction():
        acquire_prisma_lock(conn, timeout_ms=db.lock_timeout_ms, transaction_scoped=True,
                            purpose="recording the migration history")
        existed = conn.execute(TABLE_EXISTS, (table.as_string(conn),)).fetchone()[0]
        conn.execute(sql.SQL(CREATE_TABLE).format(table=table))
        result.created_table = not existed
        writes = _plan_writes(read_history(conn, schema), covered, mark, resolve)
        if writes.auto_resolve:
            result.resolved_failed = [r[0] for r in conn.execute(
                sql.SQL(MARK_ROLLED_BACK).format(table=table), {"ids": list(writes.auto_resolve)})]
            for name in result.resolved_failed:
                log(f"Marked the failed attempt of {name} as rolled back: the baseline covers it "
                    "(it blocked `prisma migrate deploy` with P3009).")
        if writes.named_resolve:
            result.resolved_rolled_back = [r[0] for r in conn.execute(
                sql.SQL(MARK_ROLLED_BACK).format(table=table), {"ids": list(writes.named_resolve)})]
            for name in result.resolved_rolled_back:
                log(f"Marked the failed attempt of {name} as rolled back (resolve_rolled_back, like "
                    "`prisma migrate resolve --rolled-back`); it is applied again now.")
        for migration in writes.baseline:
            _mark_applied(conn, schema, migration)
            result.baselined.append(migration.name)
            log(f"Recorded {migration.name} as applied (baseline, like `prisma migrate resolve --applied`).")
        for migration in writes.mark:
            # Prisma's resolve --applied rolls back the failed attempts of that migration first.
            conn.execute(sql.SQL(MARK_ROLLED_BACK).format(table=table),
                         {"ids": [r.id for r in read_history(conn, schema) if r.unfinished and r.name == migration.name]})
            _mark_applied(conn, schema, migration)
            result.marked_applied.append(migration.name)
            log(f"Recorded {migration.name} as applied by hand (mark_applied), without running it.")


def record_history(
    db: Connector,
    folder: MigrationsFolder,
    baseline: str,
    *,
    mark_applied: Iterable[str] = (),
    resolve_rolled_back: Iterable[str] = (),
    log: Log = print,
) -> HistoryResult:
    """Baseline, resolve failed attempts, then apply later migrations in Prisma's order.

    A migration that fails inside our own transaction raises `ErpPipelinesError` (nothing changed, no row).
    One that ran the way Prisma runs it (explicit transaction control, CONCURRENTLY) and failed is recorded
    as failed, exactly as Prisma records it, and returned in `result.failed`; nothing after it is applied.
    """
    result = HistoryResult()
    covered = folder.up_to(baseline)
    later = folder.after(baseline)
    mark = [folder.get(name) for name in mark_applied]  # unknown names: a clear error before any write
    resolve = [folder.get(name).name for name in resolve_rolled_back]
    for migration in later:
        migration.statements  # noqa: B018 - parse every later migration before writing anything

    with db.connect("prisma-history-read", autocommit=True) as conn:
        rows = read_history(conn, db.db_schema)
    table_missing = not rows and not _table_exists(db)
    if table_missing or _plan_writes(rows, covered, mark, resolve).any():
        _write_bookkeeping(db, covered, mark, resolve, result, log)

    with db.connect("prisma-history-read", autocommit=True) as conn:
        rows = read_history(conn, db.db_schema)
    result.blocked_by = sorted({r.name for r in rows if r.unfinished})
    if result.blocked_by:
        log("Not applying later migrations: failed attempts are unresolved (Prisma refuses too, P3009): "
            + ", ".join(result.blocked_by))
    else:
        done = applied_names(rows)
        for migration in later:
            if migration.name in done:
                continue
            if migration.kind is ScriptKind.UNRUNNABLE:
                raise migration.unrunnable_error()  # nothing of it ran, no row written
            outcome = apply_migration(db, migration, log=log)
            result.outcomes.append(outcome)
            if outcome.failure is not None:
                result.failed = outcome.failure
                break
            if outcome.applied:
                result.applied.append(migration.name)

    with db.connect("prisma-history-read", autocommit=True) as conn:
        result.rows = read_history(conn, db.db_schema)
    _report(folder, result, log)
    return result


def _table_exists(db: Connector) -> bool:
    with db.connect("prisma-history-read", autocommit=True) as conn:
        qualified = _table(db.db_schema).as_string(conn)
        return bool(conn.execute(TABLE_EXISTS, (qualified,)).fetchone()[0])


def _report(folder: MigrationsFolder, result: HistoryResult, log: Log) -> None:
    by_name = {m.name: m for m in folder.migrations}
    for row in result.rows:
        if not row.applied:
            continue
        migration = by_name.get(row.name)
        if migration is None:
            if row.name not in result.not_in_folder:
                result.not_in_folder.append(row.name)
            continue
        if not checksum_matches(migration, row.checksum) and row.name not in result.checksum_mismatches:
            result.checksum_mismatches.append(row.name)
            log(f"WARNING: {row.name} was modified after it was applied (checksum differs); left as recorded.")
        if migration.kind is ScriptKind.UNRUNNABLE and row.name not in result.unrunnable_applied:
            result.unrunnable_applied.append(row.name)
            stmt = next(s for s in migration.statements if s.non_transactional)
            log(f"Note: {row.name} is recorded as applied and left as it is, although PostgreSQL cannot run it "
                f"as one script (statement {stmt.number}, line {stmt.line}, cannot run in a transaction block).")
