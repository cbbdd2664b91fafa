"""`_prisma_migrations`, kept exactly the way Prisma Migrate reads and writes it.

A migration counts as applied when it has a row with `finished_at` set and `rolled_back_at` null; a row
with both null is a failed attempt that blocks `prisma migrate deploy` (P3009). `history_plan.py` decides
what to write and apply (baseline rows, resolutions, `mark_applied`, pending migrations wherever they sort);
this module carries that plan out:

- like `prisma migrate deploy`, it takes Prisma's advisory lock (72707369, session level, waiting at most
  Prisma's 10 s) on one connection BEFORE reading the history, and holds it through the last migration: the
  P3009 decision, the row writes and every apply happen under one holding, so a concurrent deploy can
  neither record a failure between two of our migrations nor make us run one twice;
- before anything is written, the migrations it is about to apply are replayed on top of the recorded history
  in throw-away schemas (or the shadow database), the same replay the sync runs: one that does not replay is an
  ErpPipelinesError naming its file and statement, with no row and no change (deliberately stronger than
  Prisma, where a script with its own BEGIN/COMMIT that fails leaves a failed row). A failure only live rows can
  cause (a data UPDATE hitting a constraint, a unique index over duplicates) cannot show in an empty replay:
  such a script still fails at run time and is recorded as Prisma records it;
- the row writes (table creation, resolutions, baseline and `mark_applied` rows, as `prisma migrate resolve`
  writes them) commit in one short transaction;
- pending migrations are applied in Prisma's order (`apply.py` says how each kind of script runs).

A recorded row is never rewritten, except `rolled_back_at` of a failed attempt, as Prisma itself does.
This module imports nothing from Dagster.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import pq, sql

from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.prisma.apply import ApplyOutcome, apply_migration, sql_fault_advice
from erp_pipelines.prisma.connection import Connector
from erp_pipelines.prisma.history_plan import HistoryPlan, RowAction, RunMode, plan_history
from erp_pipelines.prisma.lock import PRISMA_LOCK_WAIT_MS, acquire_prisma_lock, release_prisma_lock
from erp_pipelines.prisma.migrations import Migration, MigrationsFolder, ScriptKind, Statement
from erp_pipelines.prisma.replay import replay
from erp_pipelines.prisma.shadow import replay_connection
from erp_pipelines.prisma.target import target

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
    plan: HistoryPlan | None = None  # what was decided under Prisma's lock, and carried out
    lock_wait_s: float = 0.0
    lock_held_s: float = 0.0  # from before the history read through the last migration

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
    """Prisma's tolerant comparison (schema-engine `script_matches_checksum`): the file as it is, with CRLF
    turned into LF, or with LF turned into CRLF matches the row; a recorded checksum that is not 64
    characters long was written by an old Prisma that printed each byte of the SHA-256 without its leading
    zero (prisma-engines issue 1887) and is compared in that format."""
    if recorded in migration.accepted_checksums:
        return True
    if not recorded or len(recorded) == 64:
        return False
    raw = migration.raw
    return any(unpadded_checksum(v) == recorded for v in (raw, raw.replace(b"\r\n", b"\n"), raw.replace(b"\n", b"\r\n")))


def unpadded_checksum(data: bytes) -> str:
    """The SHA-256 as very old Prisma versions wrote it: every byte in hex without its leading zero."""
    return "".join(f"{byte:x}" for byte in hashlib.sha256(data).digest())


def _mark_applied(conn: psycopg.Connection, schema: str, migration: Migration) -> None:
    conn.execute(sql.SQL(MARK_APPLIED).format(table=_table(schema)),
                 {"id": str(uuid.uuid4()), "checksum": migration.checksum, "name": migration.name})


def _roll_back(conn: psycopg.Connection, schema: str, ids: Iterable[str]) -> list[str]:
    return [r[0] for r in conn.execute(sql.SQL(MARK_ROLLED_BACK).format(table=_table(schema)), {"ids": list(ids)})]


def _write_rows(conn: psycopg.Connection, schema: str, folder: MigrationsFolder, plan: HistoryPlan,
                result: HistoryResult, log: Log) -> None:
    """The plan's table creation and row writes, in one transaction (the caller holds Prisma's lock)."""
    with conn.transaction():
        if plan.create_table:
            conn.execute(sql.SQL(CREATE_TABLE).format(table=_table(schema)))
            result.created_table = True
        for write in plan.writes:
            if write.action is RowAction.ROLL_BACK_COVERED:
                result.resolved_failed += _roll_back(conn, schema, write.rolled_back_ids)
                log(f"Marked the failed attempt of {write.migration} as rolled back: the baseline covers it "
                    "(it blocked `prisma migrate deploy` with P3009).")
            elif write.action is RowAction.ROLL_BACK_NAMED:
                result.resolved_rolled_back += _roll_back(conn, schema, write.rolled_back_ids)
                log(f"Marked the failed attempt of {write.migration} as rolled back (resolve_rolled_back, like "
                    "`prisma migrate resolve --rolled-back`); it is applied again now.")
            elif write.action is RowAction.BASELINE:
                _mark_applied(conn, schema, folder.get(write.migration))
                result.baselined.append(write.migration)
                log(f"Recorded {write.migration} as applied (baseline, like `prisma migrate resolve --applied`).")
            else:
                _roll_back(conn, schema, write.rolled_back_ids)  # resolve --applied rolls failed attempts back first
                _mark_applied(conn, schema, folder.get(write.migration))
                result.marked_applied.append(write.migration)
                log(f"Recorded {write.migration} as applied by hand (mark_applied), without running it.")
    # A name can be resolved twice in one plan (two failed attempts): report it once.
    result.resolved_failed = list(dict.fromkeys(result.resolved_failed))
    result.resolved_rolled_back = list(dict.fromkeys(result.resolved_rolled_back))


def read_plan(db: Connector, folder: MigrationsFolder, baseline: str, *, mark_applied: Iterable[str] = (),
              resolve_rolled_back: Iterable[str] = ()) -> HistoryPlan:
    """The plan `record_history` would carry out now, computed from a read without Prisma's lock; writes nothing."""
    with db.connect("prisma-history-plan", autocommit=True) as conn:
        exists = _table_exists(conn, db.db_schema)
        try:
            rows = read_history(conn, db.db_schema) if exists else []
        except psycopg.errors.InsufficientPrivilege:
            table = _table(db.db_schema).as_string(conn)
            raise ErpPipelinesError(
                f"The role {conn.info.user!r} may not read {table}, so the history plan cannot be computed.",
                where=f"reading {table} in database {conn.info.dbname}",
                fix=f"GRANT SELECT ON {table} TO {sql.Identifier(conn.info.user).as_string(conn)}; (or plan as a "
                "role that can read it).",
            ) from None
    return plan_history(folder, baseline, rows, table_exists=exists, mark_applied=mark_applied,
                        resolve_rolled_back=resolve_rolled_back)


def record_history(
    db: Connector,
    folder: MigrationsFolder,
    baseline: str,
    *,
    mark_applied: Iterable[str] = (),
    resolve_rolled_back: Iterable[str] = (),
    log: Log = print,
    lock_wait_ms: int = PRISMA_LOCK_WAIT_MS,
    replay_from: str | None = None,
) -> HistoryResult:
    """Take Prisma's lock, read the history, plan (`plan_history`), replay what it would apply on top of the
    recorded history (`replay_pending`: `replay_from` through the baseline, then the later recorded ones), write
    the plan's rows, apply its migrations.

    A pending migration that does not replay raises `ErpPipelinesError` before anything is written.

    A migration that fails inside our own transaction raises `ErpPipelinesError` (nothing of it changed, no
    row). One that ran the way Prisma runs it (explicit transaction control, CONCURRENTLY) and failed is
    recorded as failed, exactly as Prisma records it, and returned in `result.failed`; nothing after it runs.
    """
    result = HistoryResult()
    mark_applied, resolve_rolled_back = list(mark_applied), list(resolve_rolled_back)
    folder.get(baseline)
    for name in [*mark_applied, *resolve_rolled_back]:
        folder.get(name)  # unknown names: a clear error before connecting
    schema = db.db_schema
    with db.connect("prisma-migrate", autocommit=True) as conn:
        result.lock_wait_s = acquire_prisma_lock(conn, timeout_ms=lock_wait_ms, transaction_scoped=False,
                                                 purpose="reading and applying the migration history")
        locked_at = time.monotonic()
        try:
            exists = _table_exists(conn, schema)
            rows = read_history(conn, schema) if exists else []
            plan = plan_history(folder, baseline, rows, table_exists=exists, mark_applied=mark_applied,
                                resolve_rolled_back=resolve_rolled_back)
            result.plan = plan
            replay_pending(conn, schema, folder, plan, applied_names(rows), replay_from, log)
            if plan.create_table or plan.writes:
                _write_rows(conn, schema, folder, plan, result, log)
            result.blocked_by = list(plan.blocked_by)
            if plan.blocked_by:
                log("Not applying any migration: failed attempts are unresolved (Prisma refuses too, P3009): "
                    + ", ".join(plan.blocked_by))
            for step in plan.applies:
                if step.mode is RunMode.REFUSED:
                    raise step.migration.unrunnable_error()  # nothing of it ran, no row written
                outcome = apply_migration(db, conn, step.migration, log=log, late=step.late)
                result.outcomes.append(outcome)
                if outcome.failure is not None:
                    result.failed = outcome.failure
                    break
                result.applied.append(step.name)
        finally:
            if not conn.closed and conn.info.transaction_status == pq.TransactionStatus.IDLE:
                release_prisma_lock(conn)
            result.lock_held_s = time.monotonic() - locked_at

    with db.connect("prisma-history-read", autocommit=True) as conn:
        result.rows = read_history(conn, schema)
    _report(folder, result, log)
    return result


def _not_replayable(late: set[str]):
    """The error for a pending migration that does not replay (see `replay_pending`)."""

    def refuse(migration: Migration, stmt: Statement, message: str, sqlstate: str) -> ErpPipelinesError:
        return ErpPipelinesError(
            f"Migration {migration.name} is about to be applied and fails at statement {stmt.number} (line "
            f"{stmt.line}) when replayed first on top of the recorded history in throw-away schemas (as Prisma's "
            f"shadow database replays it): {message}. Nothing was written: no change, no _prisma_migrations row "
            "(run as Prisma runs it, a script with its own BEGIN/COMMIT would have left a failed row and whatever it "
            "committed before the error).",
            where=f"{migration.path}, statement {stmt.number} (line {stmt.line}): {stmt.preview()}",
            fix=sql_fault_advice(migration, sqlstate or "unknown", migration.name in late) + " If it relies on "
            "objects that no migration creates (made by hand), create them in an earlier migration.",
        )

    return refuse


def replay_pending(conn: psycopg.Connection, schema: str, folder: MigrationsFolder, plan: HistoryPlan,
                   recorded: Iterable[str], replay_from: str | None, log: Log) -> None:
    """Replay the migrations `plan` applies, in the order it applies them, after the history recorded as applied
    (`replay_from` through the baseline, then the later recorded ones, including the rows the plan writes) in
    throw-away schemas; a pending one that fails raises `ErpPipelinesError` naming its file, statement and line.
    Recorded migrations that do not replay are left out, as the sync leaves them out. Runs on `conn` (idle,
    autocommit) or on the shadow database; writes nothing that outlives it."""
    pending = [step.migration for step in plan.applies if step.mode is not RunMode.REFUSED]
    if not pending:
        return
    done = {*recorded, *plan.writes_of(RowAction.BASELINE), *plan.writes_of(RowAction.MARK_APPLIED)}
    context = target(folder, plan.baseline, replay_from, done).migrations
    with replay_connection(conn, log) as replay_conn:
        late = {step.name for step in plan.applies if step.late}
        replay(replay_conn, [*context, *pending], schema, trusted=done, refuse=_not_replayable(late))


def _table_exists(conn: psycopg.Connection, schema: str) -> bool:
    return bool(conn.execute(TABLE_EXISTS, (_table(schema).as_string(conn),)).fetchone()[0])


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
