"""`_prisma_migrations`, kept exactly the way Prisma Migrate reads it.

A migration counts as applied when it has a row with `finished_at` set and `rolled_back_at` null; a row
with both null blocks `prisma migrate deploy` (P3009). This module baselines (records every migration up
to the baseline as applied, as `prisma migrate resolve --applied` does), resolves rows left unfinished by
failed attempts, and applies later migrations each in its own transaction so a failure leaves neither a
row nor a partial change. It holds Prisma's advisory lock throughout and never rewrites a recorded row.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from erp_pipelines.errors import DatabaseUnavailable, ErpPipelinesError, is_connection_lost, redact
from erp_pipelines.prisma.catalog import set_search_path
from erp_pipelines.prisma.migrations import MigrationsFolder
from erp_pipelines.prisma.sync import PRISMA_ADVISORY_LOCK
from erp_pipelines.resources import ErpDatabase

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
SELECT migration_name, checksum, finished_at IS NOT NULL, rolled_back_at IS NOT NULL
FROM {table} ORDER BY started_at, migration_name
"""
RESOLVE_UNFINISHED = """
UPDATE {table} SET rolled_back_at = now()
WHERE finished_at IS NULL AND rolled_back_at IS NULL
RETURNING migration_name
"""
RECORD_APPLIED = """
INSERT INTO {table} (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at,
                     applied_steps_count)
VALUES (%(id)s, %(checksum)s, now(), %(name)s, NULL, NULL, now(), %(steps)s)
"""


@dataclass
class HistoryRow:
    name: str
    checksum: str
    finished: bool
    rolled_back: bool

    @property
    def applied(self) -> bool:
        return self.finished and not self.rolled_back

    @property
    def unfinished(self) -> bool:
        return not self.finished and not self.rolled_back


@dataclass
class HistoryResult:
    created_table: bool = False
    resolved_failed: list[str] = field(default_factory=list)
    baselined: list[str] = field(default_factory=list)
    marked_applied: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    checksum_mismatches: list[str] = field(default_factory=list)
    not_in_folder: list[str] = field(default_factory=list)
    rows: list[HistoryRow] = field(default_factory=list)

    def changed(self) -> bool:
        return bool(
            self.created_table or self.resolved_failed or self.baselined or self.marked_applied or self.applied
        )


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


def _record(conn: psycopg.Connection, schema: str, name: str, checksum: str, steps: int) -> None:
    conn.execute(
        sql.SQL(RECORD_APPLIED).format(table=_table(schema)),
        {"id": str(uuid.uuid4()), "checksum": checksum, "name": name, "steps": steps},
    )


def record_history(
    db: ErpDatabase,
    folder: MigrationsFolder,
    baseline: str,
    *,
    mark_applied: Iterable[str] = (),
    log: Log = print,
) -> HistoryResult:
    """Baseline, resolve failed rows, then apply later migrations one transaction each."""
    schema = db.db_schema
    result = HistoryResult()
    baseline_migrations = folder.up_to(baseline)
    later = folder.after(baseline)
    to_mark = list(mark_applied)
    for name in to_mark:
        folder.get(name)  # unknown names are a clear error before anything is written
    for migration in later:
        migration.statements  # noqa: B018 - parse every pending migration before writing anything

    with db.connect("prisma-history") as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (PRISMA_ADVISORY_LOCK,))
            existed = bool(read_history(conn, schema)) or conn.execute(
                TABLE_EXISTS, (sql.Identifier(schema, "_prisma_migrations").as_string(conn),)
            ).fetchone()[0]
            conn.execute(sql.SQL(CREATE_TABLE).format(table=_table(schema)))
            result.created_table = not existed
            result.resolved_failed = [
                r[0] for r in conn.execute(sql.SQL(RESOLVE_UNFINISHED).format(table=_table(schema)))
            ]
            for name in result.resolved_failed:
                log(f"Marked the unfinished attempt of {name} as rolled back (it blocked deploy with P3009).")
            done = applied_names(read_history(conn, schema))
            for migration in baseline_migrations:
                if migration.name not in done:
                    _record(conn, schema, migration.name, migration.checksum, 0)
                    result.baselined.append(migration.name)
                    log(f"Recorded {migration.name} as applied (baseline, like `prisma migrate resolve --applied`).")
            for name in to_mark:
                if name not in done and name not in result.baselined:
                    _record(conn, schema, name, folder.get(name).checksum, 0)
                    result.marked_applied.append(name)
                    log(f"Recorded {name} as applied by hand (mark_applied), without running it.")

    for migration in later:
        with db.connect("prisma-migrate") as conn:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (PRISMA_ADVISORY_LOCK,))
                if migration.name in applied_names(read_history(conn, schema)):
                    continue
                set_search_path(conn, schema)
                for stmt in migration.statements:
                    try:
                        conn.execute(stmt.text)
                    except psycopg.Error as exc:
                        message = redact(exc.diag.message_primary or str(exc))
                        if is_connection_lost(exc):
                            raise DatabaseUnavailable(
                                f"The connection was lost while applying migration {migration.name}: "
                                f"{message.strip()}. The server rolled it back: no change and no "
                                "_prisma_migrations row.",
                                where=f"{migration.path}, statement {stmt.number}",
                                fix="Run again once the server is back (a RetryPolicy does this by itself).",
                            ) from None
                        raise ErpPipelinesError(
                            f"Migration {migration.name} failed at statement {stmt.number}: {message}. It was rolled "
                            "back completely: no change and no _prisma_migrations row.",
                            where=f"{migration.path}, line {stmt.line}: {stmt.preview()}",
                            fix="Fix the migration (or the data it trips on) and run again; if it was applied by "
                            f"hand, record it with config mark_applied: [{migration.name}].",
                        ) from None
                _record(conn, schema, migration.name, migration.checksum, 1)
                result.applied.append(migration.name)
                log(f"Applied {migration.name} ({len(migration.statements)} statements).")

    with db.connect("prisma-history", autocommit=True) as conn:
        result.rows = read_history(conn, schema)
    by_name = {m.name: m for m in folder.migrations}
    for row in result.rows:
        if not row.applied:
            continue
        if row.name not in by_name:
            result.not_in_folder.append(row.name)
        elif by_name[row.name].checksum != row.checksum and row.name not in result.checksum_mismatches:
            result.checksum_mismatches.append(row.name)
            log(f"WARNING: {row.name} was modified after it was applied (checksum differs); left as recorded.")
    return result
