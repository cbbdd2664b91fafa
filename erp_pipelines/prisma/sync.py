"""Inspect -> plan -> apply: the non-destructive schema sync, in one transaction under Prisma's lock.

The wanted schema is what the baseline migration creates, as PostgreSQL itself understands it: the SQL is
run in a throw-away schema inside a savepoint that is rolled back, and that schema's catalog is compared
with the live one. Everything (lock, inspection, plan, apply) happens in one transaction holding
`pg_advisory_xact_lock(72707369)`, the lock `prisma migrate` takes, so two syncs, or a sync and a
`prisma migrate deploy`, never interleave. Lock waits are bounded by `lock_timeout`; a timed-out attempt
rolls back completely and is retried with backoff.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import errors, sql

from erp_pipelines.errors import DatabaseUnavailable, ErpPipelinesError, is_connection_lost, redact
from erp_pipelines.prisma.catalog import Catalog, has_rows, inspect, row_counts, set_search_path
from erp_pipelines.prisma.migrations import Migration
from erp_pipelines.prisma.plan import PRISMA_TABLE, Plan, build_plan
from erp_pipelines.resources import ErpDatabase

PRISMA_ADVISORY_LOCK = 72707369
Log = Callable[[str], None]

_LOCK_HOLDERS = """
SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.state, '')
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objid = %s AND l.pid <> pg_backend_pid()
"""


@dataclass
class SyncResult:
    plan: Plan
    applied: bool
    dry_run: bool
    attempts: int
    live_before: Catalog
    row_counts_before: dict[str, int]
    row_counts_after: dict[str, int]
    not_validated: dict[str, int] = field(default_factory=dict)  # FK name -> offending rows
    duration_s: float = 0.0


def build_wanted(conn: psycopg.Connection, migrations: Sequence[Migration], live_schema: str) -> Catalog:
    """Run the migrations in a throw-away schema inside a savepoint, snapshot it, roll it back."""
    shadow = f"erp_pipelines_shadow_{uuid.uuid4().hex[:10]}"
    for migration in migrations:
        migration.statements  # noqa: B018 - parse errors surface here, before anything runs
    catalog: Catalog | None = None
    try:
        with conn.transaction() as savepoint:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(shadow)))
            set_search_path(conn, shadow, live_schema)
            for migration in migrations:
                for stmt in migration.statements:
                    try:
                        conn.execute(stmt.text)
                    except psycopg.Error as exc:
                        message = exc.diag.message_primary or str(exc)
                        raise ErpPipelinesError(
                            f"Migration {migration.name} fails on an empty schema at statement {stmt.number}: "
                            f"{redact(message)}.",
                            where=f"{migration.path}, line {stmt.line}: {stmt.preview()}",
                            fix="Fix the migration so it runs on an empty database (it was run in a throw-away "
                            "schema; nothing was written).",
                        ) from None
            catalog = inspect(conn, shadow, search_path=(shadow, live_schema))
            raise psycopg.Rollback(savepoint)
    finally:
        set_search_path(conn, live_schema)
    assert catalog is not None
    catalog.schema = live_schema
    return catalog


def missing_tables_and_columns(
    conn: psycopg.Connection,
    migrations: Sequence[Migration],
    schema: str,
    extra: dict[str, dict[str, str]] | None = None,
) -> list[str]:
    """Tables and columns the migrations create (plus `extra`: table -> column -> type) that the live
    schema lacks. Read-only: the migrations run in a throw-away schema that is rolled back."""
    with conn.transaction() as tx:
        wanted = build_wanted(conn, migrations, schema)
        live = inspect(conn, schema)
        missing = []
        expected = {t: {c: col.type for c, col in table.columns.items()} for t, table in wanted.tables.items()}
        expected.update(extra or {})
        for table, columns in sorted(expected.items()):
            if table not in live.tables:
                missing.append(f"table {table}")
                continue
            have = live.tables[table].columns
            missing += [f"column {table}.{c}" for c in columns if c not in have]
        raise psycopg.Rollback(tx)
    return missing


def plan_in_transaction(
    conn: psycopg.Connection, baseline: Migration, schema: str, applied_later: Sequence[Migration] = ()
) -> tuple[Plan, Catalog]:
    """Plan against the baseline plus the later migrations already recorded as applied (so the tables they
    created are expected, not drift). A later migration that no longer replays is left out of the target."""
    wanted = build_wanted(conn, [baseline], schema)
    if applied_later:
        try:
            wanted = build_wanted(conn, [baseline, *applied_later], schema)
        except ErpPipelinesError:
            pass
    live = inspect(conn, schema)
    return build_plan(wanted, live, conn, lambda table: has_rows(conn, schema, table)), live


def count_fk_violations(conn: psycopg.Connection, schema: str, table: str, name: str) -> int:
    """Rows of `table` whose non-null key has no match in the referenced table of foreign key `name`."""
    cols = conn.execute(
        """
        SELECT ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, o)
                     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o),
               ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, o)
                     JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o),
               rn.nspname::text, rc.relname::text
        FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_class rc ON rc.oid = con.confrelid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
        WHERE n.nspname = %s AND c.relname = %s AND con.conname = %s AND con.contype = 'f'
        """,
        (schema, table, name),
    ).fetchone()
    if cols is None:
        return 0
    local, remote, ref_schema, ref_table = cols
    match = sql.SQL(" AND ").join(
        sql.SQL("p.{} = c.{}").format(sql.Identifier(r), sql.Identifier(lc)) for lc, r in zip(local, remote, strict=True)
    )
    not_null = sql.SQL(" AND ").join(sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(lc)) for lc in local)
    query = sql.SQL("SELECT count(*) FROM {} c WHERE {} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {})").format(
        sql.Identifier(schema, table), not_null, sql.Identifier(ref_schema, ref_table), match
    )
    return conn.execute(query).fetchone()[0]


def _lock_holders(db: ErpDatabase) -> str:
    try:
        with db.connect("lock-probe", autocommit=True) as conn:
            rows = conn.execute(_LOCK_HOLDERS, (PRISMA_ADVISORY_LOCK,)).fetchall()
    except ErpPipelinesError:
        return ""
    return "; ".join(f"pid {pid} ({app or 'unnamed'}, {state})" for pid, app, state in rows)


def sync_schema(
    db: ErpDatabase,
    baseline: Migration,
    *,
    dry_run: bool = False,
    applied_later: Sequence[Migration] = (),
    max_attempts: int = 3,
    backoff_s: float = 1.0,
    log: Log = print,
) -> SyncResult:
    """Plan and (unless dry_run) apply the sync. Raises ErpPipelinesError; a failure changes nothing."""
    schema = db.db_schema
    started = time.monotonic()
    for attempt in range(1, max_attempts + 1):
        step_sql = ""
        try:
            with db.connect("schema-sync") as conn:
                with conn.transaction() as tx:
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (PRISMA_ADVISORY_LOCK,))
                    plan, live = plan_in_transaction(conn, baseline, schema, applied_later)
                    counts_before = row_counts(conn, schema, sorted(live.tables))
                    log(f"Planned {len(plan.steps)} statement(s); {len(plan.drift)} drift item(s) reported only.")
                    for step in plan.ordered():
                        log(f"  {step.sql};")
                    result = SyncResult(plan, False, dry_run, attempt, live, counts_before, counts_before)
                    if dry_run or not plan.steps:
                        raise psycopg.Rollback(tx)
                    set_search_path(conn, schema)
                    for step in plan.ordered():
                        step_sql = step.sql
                        if step.kind == "validate_foreign_key":
                            _validate(conn, schema, step.table or "", step.name.split(".", 1)[1], step.sql, result, log)
                        else:
                            conn.execute(step.sql)
                    step_sql = ""
                    result.row_counts_after = row_counts(conn, schema, sorted(live.tables))
                    result.applied = True
                result.duration_s = time.monotonic() - started
                return result
        except (errors.LockNotAvailable, errors.DeadlockDetected) as exc:
            holders = _lock_holders(db)
            log(f"Attempt {attempt}/{max_attempts}: {exc.diag.message_primary}; rolled back, nothing changed.")
            if attempt == max_attempts:
                raise ErpPipelinesError(
                    f"Gave up after {max_attempts} attempts: a lock could not be taken within lock_timeout "
                    f"({db.lock_timeout_ms} ms). Nothing was changed.",
                    where=(f"statement {step_sql!r}" if step_sql else "Prisma's advisory lock 72707369")
                    + (f"; held by {holders}" if holders else ""),
                    fix="Run again when the other session (for example `prisma migrate deploy` or a long "
                    "transaction of the app) has finished, or raise lock_timeout_ms.",
                ) from None
            time.sleep(backoff_s * 2 ** (attempt - 1))
        except ErpPipelinesError:
            raise
        except psycopg.Error as exc:
            message = redact(exc.diag.message_primary or str(exc))
            if is_connection_lost(exc):
                raise DatabaseUnavailable(
                    f"The connection to the ERP database was lost during the schema sync: {message.strip()}. "
                    "The transaction was rolled back by the server: nothing was changed.",
                    where=f"database {db.safe_url()}" + (f", statement: {step_sql}" if step_sql else ""),
                    fix="Run again once the server is back (a RetryPolicy does this by itself).",
                ) from None
            raise ErpPipelinesError(
                f"The schema sync failed and was rolled back completely: {message}.",
                where=f"statement: {step_sql}" if step_sql else f"database {db.safe_url()}",
                fix="Read the statement and the error; fix the database or the migration, then run again.",
            ) from None
    raise AssertionError("unreachable")


def _validate(conn, schema: str, table: str, name: str, statement: str, result: SyncResult, log: Log) -> None:
    """VALIDATE a NOT VALID foreign key in a savepoint; existing orphans leave it NOT VALID, counted."""
    try:
        with conn.transaction():
            conn.execute(statement)
    except errors.ForeignKeyViolation:
        count = count_fk_violations(conn, schema, table, name)
        result.not_validated[f"{table}.{name}"] = count
        log(f"Foreign key {table}.{name} stays NOT VALID: {count} existing row(s) violate it.")


__all__ = ["PRISMA_ADVISORY_LOCK", "PRISMA_TABLE", "SyncResult", "sync_schema", "count_fk_violations"]
