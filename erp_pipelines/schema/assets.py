"""Assets of the `schema` group: `erp_schema`, `prisma_migration_history`, `system_health_config`.

They repeat, safely and reviewably, the ERP's manual repair: push the schema without destroying anything,
baseline `_prisma_migrations` so `prisma migrate deploy` works again, and initialise the singleton config row.
"""


import json
from collections.abc import Iterator

import dagster as dg
from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import Field

from erp_pipelines import health_config as hc
from erp_pipelines.errors import ErpPipelinesError, user_errors
from erp_pipelines.prisma.history import (
    PRISMA_COLUMNS,
    HistoryResult,
    applied_names,
    read_history,
    record_history,
)
from erp_pipelines.prisma.lock import PRISMA_LOCK_WAIT_MS
from erp_pipelines.prisma.migrations import read_migrations_folder
from erp_pipelines.prisma.replay import check_tables
from erp_pipelines.prisma.shadow import replay_connection
from erp_pipelines.prisma.sync import (
    count_check_violations,
    count_fk_violations,
    sync_schema,
)
from erp_pipelines.prisma.target import DEFAULT_BASELINE, replay_range, target
from erp_pipelines.resources import ErpDatabase, PrismaMigrationsFolder
from erp_pipelines.schema import versions

ROWS_PRESERVED = "rows_preserved"
FOREIGN_KEYS_VALIDATED = "foreign_keys_validated"
HEALTH_CONFIG_VALID = "health_config_valid"
MIGRATIONS_UP_TO_DATE = "migrations_up_to_date"
TABLES_PRESENT = "tables_present"
CHECKSUMS_MATCH = "checksums_match"


class SchemaSyncConfig(dg.Config):
    dry_run: bool = Field(default=False, description="Plan only: record the SQL it would run, change nothing.")
    baseline_migration: str | None = Field(
        default=None,
        description=f"The migration that creates the schema (default: ERP_BASELINE_MIGRATION, else {DEFAULT_BASELINE}).",
    )
    replay_from: str | None = Field(
        default=None,
        description="First migration of the history to replay (e.g. the very first one for an unsquashed "
        "history): the wanted schema is every migration from it through baseline_migration. Default: "
        "ERP_REPLAY_FROM, else the baseline alone (a squashed baseline).",
    )


def _md_table(header: tuple[str, ...], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


@dg.asset(
    group_name="schema",
    kinds={"postgres"},
    pool="erp_db",
    output_required=False,
    check_specs=[
        dg.AssetCheckSpec(ROWS_PRESERVED, asset="erp_schema", blocking=True,
                          description="No pre-existing table has fewer rows after the sync."),
        dg.AssetCheckSpec(FOREIGN_KEYS_VALIDATED, asset="erp_schema",
                          description="Every foreign key and CHECK constraint the sync added is VALID (WARN with violating-row counts)."),
    ],
)
def erp_schema(
    context: dg.AssetExecutionContext,
    config: SchemaSyncConfig,
    erp_db: ErpDatabase,
    migrations: PrismaMigrationsFolder,
) -> Iterator:
    """The live schema, synced non-destructively to what the migrations create (`replay_from` through
    `baseline_migration`, replayed in a throw-away schema).

    Adds missing extensions, enum types/values, sequences, tables, columns, keys, indexes, CHECKs, foreign
    keys, functions, views and triggers, and only those; never drops, renames, retypes or replaces. Prisma's
    advisory lock is held only for the DDL. Differences it will not touch are reported as drift. With
    `dry_run`, it records the plan and changes nothing (no materialization).
    """
    with user_errors():
        baseline_name, replay_from = replay_range(config.baseline_migration, config.replay_from, "erp_schema")
        folder = read_migrations_folder(migrations.folder())
        folder.get(baseline_name)
        with erp_db.connect("history-read", autocommit=True) as conn:
            done = applied_names(read_history(conn, erp_db.db_schema))
        wanted = target(folder, baseline_name, replay_from, done)
        baseline = wanted.baseline
        result = sync_schema(erp_db, baseline, dry_run=config.dry_run, applied_later=wanted.applied_later,
                             replayed_before=wanted.before, log=context.log.info, trusted=done,
                             warn=context.log.warning)
    plan = result.plan
    summary = plan.summary()
    metadata = {
        "dry_run": config.dry_run,
        "plan": dg.MetadataValue.md(plan.markdown()),
        **{k: dg.MetadataValue.int(v) for k, v in summary.items()},
        "drift": dg.MetadataValue.json([f"{d.kind} {d.object}" for d in plan.drift]),  # named in make run's summary
        "tables_before": dg.MetadataValue.int(len(result.live_before.tables)),
        "foreign_keys_not_valid": dg.MetadataValue.json(result.not_validated),
        "duration_s": dg.MetadataValue.float(round(result.duration_s, 3)),
        "lock_held_s": dg.MetadataValue.float(round(result.lock_held_s, 3)),
        "replay_from": replay_from or baseline.name,
        "not_verifiable": dg.MetadataValue.json(_not_verifiable(result.not_verifiable)),
        "attempts": dg.MetadataValue.int(result.attempts),
        "baseline_migration": baseline.name,
        "database": erp_db.safe_url(),
        "dagster/table_name": f"{erp_db.db_schema}.*",
    }
    if config.dry_run:
        context.log.info("Dry run: nothing was changed. Plan:\n" + plan.markdown())
        context.log_event(dg.AssetObservation(asset_key=context.asset_key, metadata=metadata))
        for name in (ROWS_PRESERVED, FOREIGN_KEYS_VALIDATED):
            yield dg.AssetCheckResult(check_name=name, passed=True, metadata={"skipped": "dry run"})
        return

    lowered = {
        t: (before, result.row_counts_after.get(t, 0))
        for t, before in result.row_counts_before.items()
        if result.row_counts_after.get(t, 0) < before
    }
    metadata["row_counts"] = dg.MetadataValue.md(
        _md_table(("table", "rows before", "rows after"),
                  [(t, b, result.row_counts_after.get(t, b)) for t, b in sorted(result.row_counts_before.items())])
    )
    not_valid = _not_valid_foreign_keys(erp_db)
    # a no-op keeps the schema's data version (downstream stays Synced) and shows the last applied plan
    metadata.update(versions.carried_plan(context, plan.markdown() if plan.steps else None))
    yield dg.MaterializeResult(
        data_version=versions.schema_version(context, erp_db, applied=bool(plan.steps)),
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=ROWS_PRESERVED,
                passed=not lowered,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    "tables_checked": dg.MetadataValue.int(len(result.row_counts_before)),
                    "lowered": dg.MetadataValue.json({t: list(v) for t, v in lowered.items()}),
                    **({"users": dg.MetadataValue.int(result.row_counts_after["users"])}
                       if "users" in result.row_counts_after else {}),
                },
            ),
            dg.AssetCheckResult(
                check_name=FOREIGN_KEYS_VALIDATED,
                passed=not not_valid,
                severity=dg.AssetCheckSeverity.WARN,
                description=(
                    "Foreign keys / CHECK constraints left NOT VALID because existing rows violate them: "
                    + ", ".join(f"{k} ({v} rows)" for k, v in not_valid.items())
                ) if not_valid else "All foreign keys are valid.",
                metadata={"offending_rows": dg.MetadataValue.json(not_valid)},
            ),
        ],
    )


_NOT_VALID_FKS = """
SELECT c.relname::text, con.conname::text, con.contype::text FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND con.contype IN ('f', 'c') AND NOT con.convalidated ORDER BY 1, 2
"""


def _not_valid_foreign_keys(erp_db: ErpDatabase) -> dict[str, int]:
    """NOT VALID foreign keys and CHECK constraints with the count of rows violating each."""
    with erp_db.connect("fk-check", autocommit=True) as conn:
        rows = conn.execute(_NOT_VALID_FKS, (erp_db.db_schema,)).fetchall()
        counters = {"f": count_fk_violations, "c": count_check_violations}
        return {f"{t}.{n}": counters[k](conn, erp_db.db_schema, t, n) for t, n, k in rows}


def _not_verifiable(reasons: dict[str, str]) -> dict[str, str]:
    return {name: f"not verifiable: {reason}" for name, reason in reasons.items()}


class MigrationHistoryConfig(dg.Config):
    baseline_migration: str | None = Field(
        default=None,
        description="Recorded as applied with all before it (default: ERP_BASELINE_MIGRATION, else the demo's).",
    )
    replay_from: str | None = Field(
        default=None,
        description="As on erp_schema (default: ERP_REPLAY_FROM): the tables_present check replays the history "
        "from this migration.",
    )
    mark_applied: list[str] = Field(
        default_factory=list,
        description="Later migrations applied by hand: record them as applied without running them "
        "(like `prisma migrate resolve --applied`).",
    )
    resolve_rolled_back: list[str] = Field(
        default_factory=list,
        description="Later migrations whose failed attempt was cleaned up by hand: mark that attempt rolled back "
        "(like `prisma migrate resolve --rolled-back`) and apply the migration again.",
    )
    prisma_lock_wait_ms: int = Field(
        default=PRISMA_LOCK_WAIT_MS,
        description="How long to wait for Prisma's advisory lock before giving up (Prisma's own wait: 10 s).",
    )


@dg.asset(
    group_name="schema",
    kinds={"postgres"},
    pool="erp_db",
    deps=[erp_schema],
    check_specs=[
        dg.AssetCheckSpec(MIGRATIONS_UP_TO_DATE, asset="prisma_migration_history", blocking=True,
                          description="No unresolved failed migration; every migration of the folder applied."),
        dg.AssetCheckSpec(TABLES_PRESENT, asset="prisma_migration_history", blocking=True,
                          description="Every table and column the migrations create, and _prisma_migrations, exist."),
        dg.AssetCheckSpec(CHECKSUMS_MATCH, asset="prisma_migration_history",
                          description="Applied migrations were not edited afterwards (WARN)."),
    ],
)
def prisma_migration_history(
    context: dg.AssetExecutionContext,
    config: MigrationHistoryConfig,
    erp_db: ErpDatabase,
    migrations: PrismaMigrationsFolder,
) -> dg.MaterializeResult:
    """`_prisma_migrations` as Prisma reads it: baseline recorded once, failed attempts resolved (automatically only
    for migrations the baseline covers), later migrations applied in Prisma's order the way Prisma applies them
    (in one transaction with their row wherever the script allows it), so `prisma migrate deploy` has nothing to do.
    """
    with user_errors():
        baseline_name, replay_from = replay_range(config.baseline_migration, config.replay_from,
                                                  "prisma_migration_history")
        folder = read_migrations_folder(migrations.folder())
        result = record_history(erp_db, folder, baseline_name, mark_applied=config.mark_applied,
                                resolve_rolled_back=config.resolve_rolled_back, log=context.log.info,
                                lock_wait_ms=config.prisma_lock_wait_ms, replay_from=replay_from)
        expected = target(folder, baseline_name, replay_from, applied_names(result.rows)).migrations
    rows = result.rows
    done = applied_names(rows)
    unfinished = sorted({r.name for r in rows if r.unfinished})
    pending = [n for n in folder.names() if n not in done]
    missing, unverifiable, replay_error = [], {}, None
    with erp_db.connect("tables-check") as conn:
        try:
            with replay_connection(conn, context.log.warning) as replay_conn:
                missing, unverifiable = check_tables(
                    conn, expected, erp_db.db_schema, extra={"_prisma_migrations": PRISMA_COLUMNS}, trusted=done,
                    replay_conn=replay_conn)
        except ErpPipelinesError as exc:  # reported by the check, never swallowed
            replay_error = str(exc)
            context.log.error(f"tables_present: the applied migrations do not replay: {exc}")
    for name, reason in unverifiable.items():
        context.log.warning(f"tables_present: {name} is recorded as applied but not verifiable: {reason}")
    if result.failed is not None:
        context.log.error(str(result.failed))
    history = _md_table(
        ("migration", "applied", "rolled back", "unfinished"),
        [(r.name, r.applied, r.rolled_back, r.unfinished) for r in rows],
    )
    return dg.MaterializeResult(
        metadata={
            "history": dg.MetadataValue.md(history),
            "rows": dg.MetadataValue.int(len(rows)),
            "baselined": dg.MetadataValue.json(result.baselined),
            "resolved_failed": dg.MetadataValue.json(result.resolved_failed),
            "resolved_rolled_back": dg.MetadataValue.json(result.resolved_rolled_back),
            "applied": dg.MetadataValue.json(result.applied),
            "applied_kinds": dg.MetadataValue.json({o.name: o.kind.value for o in result.outcomes}),
            "marked_applied": dg.MetadataValue.json(result.marked_applied),
            "checksum_mismatches": dg.MetadataValue.json(result.checksum_mismatches),
            "not_in_folder": dg.MetadataValue.json(result.not_in_folder),
            "unrunnable_but_applied": dg.MetadataValue.json(result.unrunnable_applied),
            "history_plan": dg.MetadataValue.md("\n".join(f"- {line}" for line in result.plan.lines())
                                                if result.plan else "(not planned)"),
            "late_merged_applied": dg.MetadataValue.json(
                [a.name for a in result.plan.applies if a.late and a.name in result.applied] if result.plan else []),
            "prisma_lock_held_max_ms": dg.MetadataValue.float(round(result.lock_held_s * 1000, 1)),
            "changed": result.changed(),
            "dagster/table_name": f"{erp_db.db_schema}._prisma_migrations",
            "dagster/row_count": dg.MetadataValue.int(len(rows)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=MIGRATIONS_UP_TO_DATE,
                passed=not unfinished and not pending,
                severity=dg.AssetCheckSeverity.ERROR,
                description=_up_to_date_description(result, unfinished, pending),
                metadata={"unfinished": dg.MetadataValue.json(unfinished), "pending": dg.MetadataValue.json(pending)},
            ),
            dg.AssetCheckResult(
                check_name=TABLES_PRESENT,
                passed=not missing and replay_error is None and not unverifiable,
                severity=dg.AssetCheckSeverity.ERROR if missing or replay_error else dg.AssetCheckSeverity.WARN,
                description=replay_error or "; ".join(missing[:20]) or "; ".join(
                    f"{n}: {r}" for n, r in _not_verifiable(unverifiable).items()) or "all present",
                metadata={"missing": dg.MetadataValue.json(missing),
                          "not_verifiable": dg.MetadataValue.json(_not_verifiable(unverifiable))},
            ),
            dg.AssetCheckResult(
                check_name=CHECKSUMS_MATCH,
                passed=not result.checksum_mismatches,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"modified_after_apply": dg.MetadataValue.json(result.checksum_mismatches)},
            ),
        ],
    )


def _up_to_date_description(result: HistoryResult, unfinished: list[str], pending: list[str]) -> str:
    if result.failed is not None:
        return str(result.failed)
    if unfinished:
        return (f"Failed migration attempts block `prisma migrate deploy` (P3009) and this step: {', '.join(unfinished)}. "
                "What to do: check what each did (its logs column), fix the cause, then run prisma_migration_history "
                f"with config resolve_rolled_back: {unfinished} to apply them again (or mark_applied if they were "
                "completed by hand).")
    if pending:
        return f"Not applied: {', '.join(pending)}."
    return "Every migration of the folder is applied."


class HealthConfigSettings(dg.Config):
    """Values for a missing config row; an existing row (and an operator's edits) is never overwritten."""

    thresholds_json: str = Field(default=json.dumps(hc.DEFAULT_THRESHOLDS),
                                 description="JSON object {metric: {warning, critical}}.")
    backup_location: str = hc.DEFAULT_BACKUP_LOCATION
    refresh_interval: int = hc.DEFAULT_REFRESH_INTERVAL_MS
    metrics_retention_days: int = hc.DEFAULT_METRICS_RETENTION_DAYS
    aggregate_retention_days: int = hc.DEFAULT_AGGREGATE_RETENTION_DAYS


INSERT_CONFIG = """
INSERT INTO {table} (id, thresholds, "backupLocation", "refreshInterval", "metricsRetentionDays",
                     "aggregateRetentionDays")
VALUES (1, %(thresholds)s, %(backup)s, %(refresh)s, %(metrics)s, %(aggregate)s)
ON CONFLICT (id) DO NOTHING
RETURNING id
"""
SEQUENCE_STATE = """
SELECT pg_get_serial_sequence(%(table)s, 'id') AS seq
"""


@dg.asset(
    group_name="schema",
    kinds={"postgres"},
    pool="erp_db",
    deps=[erp_schema],
    check_specs=[dg.AssetCheckSpec(HEALTH_CONFIG_VALID, asset="system_health_config",
                                   description="Thresholds ordered, retention days in range (ERROR names the key).")],
)
def system_health_config(
    context: dg.AssetExecutionContext, config: HealthConfigSettings, erp_db: ErpDatabase
) -> dg.MaterializeResult:
    """The singleton `system_health_config` row (id 1), inserted only if missing.

    The id sequence is moved past the existing ids so the app's own inserts never collide with row 1.
    """
    with user_errors():
        return _materialize_health_config(context, config, erp_db)


def _materialize_health_config(
    context: dg.AssetExecutionContext, config: HealthConfigSettings, erp_db: ErpDatabase
) -> dg.MaterializeResult:
    try:
        thresholds = json.loads(config.thresholds_json)
    except ValueError as exc:
        raise ErpPipelinesError(f"thresholds_json is not valid JSON: {exc}.", where="run config of system_health_config",
                                fix="Pass a JSON object like {\"latency\": {\"warning\": 500, \"critical\": 1000}}.") from None
    wanted = hc.HealthConfig(thresholds, config.backup_location, config.refresh_interval,
                             config.metrics_retention_days, config.aggregate_retention_days)
    problems = hc.validate_config(wanted)
    if problems:
        raise ErpPipelinesError(
            "Invalid health-config values: " + "; ".join(f"{k} {m}" for k, m in problems) + ".",
            where="run config of system_health_config",
            fix="Correct the values; nothing was written.",
        )
    schema = erp_db.db_schema
    table = sql.Identifier(schema, "system_health_config")
    with erp_db.connect("health-config") as conn, conn.transaction():
        qualified = table.as_string(conn)
        inserted = conn.execute(
            sql.SQL(INSERT_CONFIG).format(table=table),
            {"thresholds": Jsonb(thresholds), "backup": config.backup_location, "refresh": config.refresh_interval,
             "metrics": config.metrics_retention_days, "aggregate": config.aggregate_retention_days},
        ).fetchone() is not None
        seq = conn.execute(SEQUENCE_STATE, {"table": qualified}).fetchone()[0]
        sequence_moved = False
        if seq:
            max_id = conn.execute(sql.SQL("SELECT max(id) FROM {}").format(table)).fetchone()[0] or 1
            last_value, is_called = conn.execute(
                sql.SQL("SELECT last_value, is_called FROM {}").format(sql.SQL(seq))
            ).fetchone()
            if not is_called or last_value < max_id:
                conn.execute("SELECT setval(%s, %s, true)", (seq, max(max_id, last_value)))
                sequence_moved = True
        row = hc.read_config(conn, schema)
    context.log.info("Inserted the config row." if inserted else "The config row exists; left as it is.")
    problems = hc.validate_config(row) if row else [("id", "row 1 is missing")]
    return dg.MaterializeResult(
        data_version=versions.config_version(row),  # the same row, the same version: rollups stay Synced
        metadata={
            "inserted": inserted,
            "sequence_moved": sequence_moved,
            "metricsRetentionDays": row.metrics_retention_days if row else None,
            "aggregateRetentionDays": row.aggregate_retention_days if row else None,
            "backupLocation": row.backup_location if row else None,
            "dagster/table_name": f"{schema}.system_health_config",
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=HEALTH_CONFIG_VALID,
                passed=not problems,
                severity=dg.AssetCheckSeverity.ERROR,
                description="; ".join(f"{k}: {m}" for k, m in problems) or "valid",
                metadata={"bad_keys": dg.MetadataValue.json([k for k, _ in problems])},
            )
        ],
    )


__all__ = ["DEFAULT_BASELINE", "erp_schema", "prisma_migration_history", "system_health_config", "SchemaSyncConfig"]
