"""Replay -> inspect -> plan -> apply: the non-destructive schema sync, holding Prisma's lock only for DDL.

1. Plan, without any lock: the history is replayed in a throw-away schema (`replay.replay`), the live schema
   inspected, the typed plan built, the whole-table row counts taken, and a fingerprint of the live catalog
   noted. Nothing is written.
2. New enum values (phase ENUM_VALUES): one short transaction under `pg_advisory_xact_lock(72707369)` (the
   lock `prisma migrate` takes) that re-checks the fingerprint and commits them, so later steps may use them.
3. DDL (phase DDL): one short transaction under the same lock that re-checks the fingerprint (the plan is
   still valid: nobody changed the schema since it was made) and runs the steps. A changed fingerprint means
   re-plan, up to `max_attempts`.
4. VALIDATE (phase VALIDATE): after commit, each NOT VALID foreign key / CHECK constraint in its own
   transaction (SHARE UPDATE EXCLUSIVE only); a violating row leaves it NOT VALID and is counted.

Lock waits are bounded by `lock_timeout`; a timed-out attempt rolls back completely and is retried with
backoff. `SyncResult.lock_held_s` is the longest time the advisory lock was held.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace

import psycopg
from psycopg import errors, sql

from erp_pipelines.errors import DatabaseUnavailable, ErpPipelinesError, is_connection_lost, redact
from erp_pipelines.prisma.catalog import Catalog, fingerprint, has_rows, inspect, row_counts, set_search_path
from erp_pipelines.prisma.changes import Phase, Plan, Step, StepKind
from erp_pipelines.prisma.connection import Connector
from erp_pipelines.prisma.migrations import Migration
from erp_pipelines.prisma.plan import PRISMA_TABLE, build_plan
from erp_pipelines.prisma.replay import missing_tables_and_columns, replay
from erp_pipelines.prisma.shadow import replay_connection

PRISMA_ADVISORY_LOCK = 72707369
Log = Callable[[str], None]

_LOCK_HOLDERS = """
SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.state, '')
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objid = %s AND l.pid <> pg_backend_pid()
"""
_TAKE_LOCK = "SELECT pg_advisory_xact_lock(%s)"


class _PlanOutdated(Exception):
    """The live catalog changed between planning and taking the lock: plan again."""


@dataclass
class SyncResult:
    plan: Plan
    applied: bool
    dry_run: bool
    attempts: int
    live_before: Catalog
    row_counts_before: dict[str, int]
    row_counts_after: dict[str, int]
    not_validated: dict[str, int] = field(default_factory=dict)  # "table.constraint" -> offending rows
    duration_s: float = 0.0
    lock_held_s: float = 0.0  # longest time Prisma's advisory lock was held
    wanted: Catalog | None = None
    not_verifiable: dict[str, str] = field(default_factory=dict)  # recorded migration -> why it does not replay


def plan_sync(
    conn: psycopg.Connection,
    migrations: Sequence[Migration],
    schema: str,
    *,
    trusted: Collection[str] = (),
    warn: Log = print,
    not_verifiable: dict[str, str] | None = None,
) -> tuple[Plan, Catalog, Catalog, tuple]:
    """Replay `migrations`, inspect the live schema, plan. Read-only; runs in (and rolls back) a transaction.

    The replay runs on the shadow database when ERP_SHADOW_DATABASE_URL is set. Migrations in `trusted`
    (recorded as applied) that do not replay are left out of the wanted schema and put in `not_verifiable`.
    Returns the plan, the live and wanted catalogs and the live catalog's fingerprint.
    """
    with replay_connection(conn, warn) as replay_conn:
        replayed = replay(replay_conn, migrations, schema, trusted=trusted)
    if not_verifiable is not None:
        not_verifiable.update(replayed.not_verifiable)
    wanted = replayed.catalog
    with conn.transaction() as tx:
        live = inspect(conn, schema)
        print_ = fingerprint(conn, schema)
        plan = build_plan(wanted, live, lambda table: has_rows(conn, schema, table))
        for other, other_wanted in sorted(replayed.other_schemas.items()):
            _plan_other_schema(conn, plan, other, other_wanted)
        raise psycopg.Rollback(tx)
    return plan, live, wanted, print_


_SCHEMA_EXISTS = "SELECT 1 FROM pg_namespace WHERE nspname = %s"


def _plan_other_schema(conn: psycopg.Connection, plan: Plan, schema: str, wanted: Catalog) -> None:
    """Add to `plan` what the history creates in another schema (`CREATE SCHEMA "audit"` and its tables) that
    the live database lacks, by the same add-only rules; each step runs with that schema on its search_path."""
    if not conn.execute(_SCHEMA_EXISTS, (schema,)).fetchone():
        plan.steps.append(Step(StepKind.CREATE_SCHEMA, sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
            sql.Identifier(schema)).as_string(conn), schema, schema=schema))
    other = build_plan(wanted, inspect(conn, schema), lambda table: has_rows(conn, schema, table))
    plan.steps += [replace(step, schema=schema) for step in other.steps]
    plan.drift += [replace(d, object=f"{schema}.{d.object}") for d in other.drift]
    plan.equivalents += [f"{schema}: {e}" for e in other.equivalents]


def plan_in_transaction(
    conn: psycopg.Connection, baseline: Migration, schema: str, applied_later: Sequence[Migration] = ()
) -> tuple[Plan, Catalog]:
    """Compatibility: the plan against the baseline plus the later migrations recorded as applied."""
    plan, live, _, _ = plan_sync(conn, [baseline, *applied_later], schema)
    return plan, live


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


_CHECK_EXPR = """
SELECT pg_get_expr(con.conbin, con.conrelid, true) FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND con.conname = %s AND con.contype = 'c'
"""


def count_check_violations(conn: psycopg.Connection, schema: str, table: str, name: str) -> int:
    """Rows of `table` for which CHECK constraint `name` is false (NULL passes, as in PostgreSQL)."""
    with conn.transaction():
        set_search_path(conn, schema)
        row = conn.execute(_CHECK_EXPR, (schema, table, name)).fetchone()
        if row is None:
            return 0
        query = sql.SQL("SELECT count(*) FROM {} WHERE NOT ({})").format(sql.Identifier(schema, table), sql.SQL(row[0]))
        return conn.execute(query).fetchone()[0]


def _lock_holders(db: Connector) -> str:
    try:
        with db.connect("lock-probe", autocommit=True) as conn:
            rows = conn.execute(_LOCK_HOLDERS, (PRISMA_ADVISORY_LOCK,)).fetchall()
    except ErpPipelinesError:
        return ""
    return "; ".join(f"pid {pid} ({app or 'unnamed'}, {state})" for pid, app, state in rows)


def _locked_phase(
    conn: psycopg.Connection, schema: str, steps: list[Step], expected: tuple, result: SyncResult, log: Log
) -> tuple:
    """Run `steps` in one transaction under Prisma's lock after re-checking the fingerprint; return the new one."""
    with conn.transaction():
        conn.execute(_TAKE_LOCK, (PRISMA_ADVISORY_LOCK,))
        locked_at = time.monotonic()
        if fingerprint(conn, schema) != expected:
            raise _PlanOutdated
        set_search_path(conn, schema)
        on_path = schema
        for step in steps:
            if (step.schema or schema) != on_path:
                on_path = step.schema or schema
                set_search_path(conn, on_path)
            try:
                conn.execute(step.sql)
            except psycopg.Error as exc:
                exc.add_note(step.sql)
                raise
        after = fingerprint(conn, schema)
    held = time.monotonic() - locked_at
    result.lock_held_s = max(result.lock_held_s, held)
    log(f"Applied {len(steps)} statement(s) in {held * 1000:.0f} ms under Prisma's advisory lock.")
    return after


def _validate(conn: psycopg.Connection, schema: str, step: Step, result: SyncResult, log: Log) -> None:
    """VALIDATE one NOT VALID constraint in its own transaction; violating rows leave it NOT VALID, counted."""
    table, schema = step.table or "", step.schema or schema
    try:
        with conn.transaction():
            set_search_path(conn, schema)
            conn.execute(step.sql)
    except (errors.ForeignKeyViolation, errors.CheckViolation):
        with conn.transaction():
            if step.constraint_kind == "f":
                count = count_fk_violations(conn, schema, table, step.object)
            else:
                count = count_check_violations(conn, schema, table, step.object)
        result.not_validated[f"{table}.{step.object}"] = count
        log(f"Constraint {table}.{step.object} stays NOT VALID: {count} existing row(s) violate it.")


def sync_schema(
    db: Connector,
    baseline: Migration,
    *,
    dry_run: bool = False,
    applied_later: Sequence[Migration] = (),
    replayed_before: Sequence[Migration] = (),
    max_attempts: int = 3,
    backoff_s: float = 1.0,
    log: Log = print,
    trusted: Collection[str] = (),
    warn: Log | None = None,
) -> SyncResult:
    """Plan and (unless dry_run) apply the sync. Raises ErpPipelinesError; a failed DDL phase changes nothing.

    The wanted schema is the replay of `replayed_before` (the history from `replay_from`), `baseline`, then
    `applied_later` (later migrations already recorded as applied). Those named in `trusted` (recorded as
    applied by the operator or by Prisma) are part of it only where they replay; the others are listed in
    `SyncResult.not_verifiable` with a warning.
    """
    schema = db.db_schema
    migrations = [*replayed_before, baseline, *applied_later]
    started = time.monotonic()
    lock_held = 0.0
    committed_enum_values: list[str] = []  # phase 1 commits on its own: said in any later error
    for attempt in range(1, max_attempts + 1):
        try:
            with db.connect("schema-sync") as conn:
                unverified: dict[str, str] = {}
                plan, live, wanted, expected = plan_sync(conn, migrations, schema, trusted=trusted,
                                                         warn=warn or log, not_verifiable=unverified)
                for name, reason in unverified.items():
                    (warn or log)(f"Migration {name} is recorded as applied but not verifiable: {reason}.")
                with conn.transaction():
                    counts_before = row_counts(conn, schema, sorted(live.tables))
                log(f"Planned {len(plan.steps)} statement(s); {len(plan.drift)} drift item(s) reported only.")
                for step in plan.ordered():
                    log(f"  {step.sql};")
                result = SyncResult(plan, False, dry_run, attempt, live, counts_before, counts_before, wanted=wanted,
                                    not_verifiable=unverified)
                result.lock_held_s = lock_held
                if dry_run or not plan.steps:
                    result.duration_s = time.monotonic() - started
                    return result
                for phase in (Phase.ENUM_VALUES, Phase.DDL):
                    steps = plan.ordered(phase)
                    if steps:
                        expected = _locked_phase(conn, schema, steps, expected, result, log)
                        lock_held = result.lock_held_s
                        if phase is Phase.ENUM_VALUES:
                            committed_enum_values += [s.label for s in steps]
                for step in plan.ordered(Phase.VALIDATE):
                    _validate(conn, schema, step, result, log)
                with conn.transaction():
                    result.row_counts_after = row_counts(conn, schema, sorted(live.tables))
                result.applied = True
                result.duration_s = time.monotonic() - started
                return result
        except _PlanOutdated:
            log(f"Attempt {attempt}/{max_attempts}: the schema changed since the plan was made; planning again.")
            if attempt == max_attempts:
                raise ErpPipelinesError(
                    f"The schema kept changing while the sync planned ({max_attempts} attempts); nothing was "
                    "changed by the last attempt.",
                    where=f"schema {schema} of {db.safe_url()}",
                    fix="Run again when the other migration tool (for example `prisma migrate deploy`) has finished.",
                ) from None
        except (errors.LockNotAvailable, errors.DeadlockDetected) as exc:
            step_sql = (getattr(exc, "__notes__", None) or [""])[-1]
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
            failed = (getattr(exc, "__notes__", None) or [""])[-1]
            if is_connection_lost(exc):
                raise DatabaseUnavailable(
                    f"The connection to the ERP database was lost during the schema sync: {message.strip()}. "
                    "The transaction was rolled back by the server: nothing was changed.",
                    where=f"database {db.safe_url()}" + (f", statement: {failed}" if failed else ""),
                    fix="Run again once the server is back (a RetryPolicy does this by itself).",
                ) from None
            raise ErpPipelinesError(
                f"The schema sync failed and was rolled back completely: {message}."
                + (f" Only the new enum values committed before it remain ({', '.join(committed_enum_values)}): "
                   "additions, which the next run finds present." if committed_enum_values else ""),
                where=f"statement: {failed}" if failed else f"database {db.safe_url()}",
                fix=_permission_fix(db, message) if isinstance(exc, errors.InsufficientPrivilege)
                else "Read the statement and the error; fix the database or the migration, then run again.",
            ) from None
    raise AssertionError("unreachable")


def _permission_fix(db: Connector, message: str) -> str:
    """What a role lacking a privilege runs (erp_pipelines/grants.py: the same statements as
    `erp-pipelines grants --for sync`)."""
    from erp_pipelines import grants

    target, role = grants.Target.for_database(db), grants.login_role(db) or "<role>"
    obj, grant = grants.fix_for(message, role, target, ["sync"])
    return (f"The role {role} lacks a privilege on {obj}. As its owner (or a superuser) run `{grant};` "
            f"(every grant the sync needs: `erp-pipelines grants --role {role} --for sync`, docs/privileges.md). "
            "A role that can only read gets no plan: the plan replays the migrations in a throw-away schema.")


__all__ = [
    "PRISMA_ADVISORY_LOCK",
    "PRISMA_TABLE",
    "SyncResult",
    "sync_schema",
    "plan_sync",
    "count_fk_violations",
    "count_check_violations",
    "missing_tables_and_columns",
]
