"""`retention_pruning`: delete old raw samples (and optionally usage events) and very old aggregates, safely.

Order and rules:
1. Read and validate `system_health_config` row 1 (the same `validate_config` the health-config asset
   uses). Missing row or any invalid value: raise ErpPipelinesError before anything is deleted.
2. Raw `system_metric_samples` of days older than `metricsRetentionDays` (whole UTC days before
   today - N): a day goes only if `system_metric_daily` has its row AND that row's reqCount/errCount equal
   the samples' sums. Other days are skipped and reported (metadata `skipped_days`), never deleted.
3. Raw `client_usage_events`, only when `usage_event_retention_days` is configured: the same, with
   "reconciles" meaning every (client, module) of the day has the same four category counts in
   client_daily_usage as in the raw events.
4. Aggregates (`system_metric_daily`, `client_daily_usage`) of days older than `aggregateRetentionDays`:
   whole days.

Transactions and locks: each raw day is ONE short REPEATABLE READ transaction: reconcile, then delete the
day in primary-key batches of `batch_size` ids. The snapshot makes the check and the delete see the same
rows: a late row committed meanwhile is invisible to the snapshot, so it is not deleted (and makes the day
not reconcile next time, until the late-data sensor re-rolls it). A day is all-or-nothing: it is never
left half-pruned (a half-pruned day would no longer match its aggregate, and a rollup re-run would then
overwrite the aggregate with the remainder). DELETE takes only ROW EXCLUSIVE on the table, which does not
conflict with the app's INSERTs; `lock_timeout` (ErpDatabase) bounds any wait, and a day that hits it is
skipped and retried on the next run.

Advisory locks: every transaction that deletes (a raw day, a batch of aggregates) first takes the
transaction-level advisory lock of the aggregate table concerned, `pg_advisory_xact_lock(hashtext(
'erp_pipelines:system_metric_daily' | 'erp_pipelines:client_daily_usage'))` (rollups/sql.py
`ADVISORY_XACT_LOCK`), the one the rollups hold while they write. So a day is never reconciled and pruned
while a rollup is rewriting its aggregate. The wait is bounded by `lock_timeout`: a raw day that hits it
is skipped (retried next run); an aggregate batch that hits it fails the step, which the RetryPolicy retries.

"Today" is the wall clock's UTC day unless the run config sets `today` (replays and tests only).
Errors: a lost connection is `DatabaseUnavailable` (retried), a missing privilege names the GRANT to run
(rollups/assets.py `erp_connection`).
"""

from datetime import date, datetime, timedelta
from typing import Any

import dagster as dg
import psycopg
from pydantic import Field

from erp_pipelines.dbwork import ADVISORY_XACT_LOCK, erp_connection, lock_key, step_errors
from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.health_config import read_config, validate_config
from erp_pipelines.partitions import day_bounds
from erp_pipelines.resources import ErpDatabase
from erp_pipelines.retention import sql
from erp_pipelines.rollups import sql as rollup_sql
from erp_pipelines.rollups.assets import (
    CLIENT_USAGE_EVENTS,
    DEFAULT_EVENT_CATEGORIES,
    ERP_DB_POOL,
    RETRY_POLICY,
    SYSTEM_METRIC_SAMPLES,
    category_params,
    client_daily_usage,
    system_metric_daily,
)
from erp_pipelines.rollups.steps import guard_today

GROUP = "retention"
USAGE_RETENTION_RANGE = (1, 1825)
# Privileges retention needs, per table (named in the error when one is missing).
RETENTION_PRIVILEGES = {
    "system_health_config": "SELECT",
    "system_metric_samples": "SELECT, DELETE",
    "client_usage_events": "SELECT, DELETE",
    "system_metric_daily": "SELECT, DELETE",
    "client_daily_usage": "SELECT, DELETE",
}
# The advisory lock each deleted table is guarded by: its aggregate's (see the module docstring).
LOCK_OF = {
    "system_metric_samples": "system_metric_daily",
    "client_usage_events": "client_daily_usage",
    "system_metric_daily": "system_metric_daily",
    "client_daily_usage": "client_daily_usage",
}


def _lock(conn: psycopg.Connection, table: str) -> None:
    conn.execute(ADVISORY_XACT_LOCK, {"lock_key": lock_key(LOCK_OF[table])})


class RetentionConfig(dg.Config):
    usage_event_retention_days: int | None = Field(
        default=None,
        description="Delete raw client_usage_events older than this many days (only days whose "
        "client_daily_usage reconciles). Unset (the default): raw usage events are kept.",
    )
    batch_size: int = Field(
        default=5000, description="Width of one DELETE's primary-key range (ids per statement)."
    )
    event_categories: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_EVENT_CATEGORIES.items()},
        description="The event_type mapping client_daily_usage was built with (its reconciliation uses it).",
    )
    today: str | None = Field(
        default=None,
        description="The UTC day (YYYY-MM-DD) the retention windows count back from. Unset (the default): "
        "the wall clock's current UTC day. For replays and tests only.",
    )


class _Skip(Exception):
    """A day that must not be pruned now; the reason goes into the metadata."""


def _load_settings(conn: psycopg.Connection, schema: str, config: RetentionConfig) -> tuple[int, int]:
    where = f"{schema}.system_health_config, row id 1"
    try:
        cfg = read_config(conn, schema)
    except psycopg.errors.UndefinedTable:
        conn.rollback()
        cfg = None
    if cfg is None:
        raise ErpPipelinesError(
            "There is no retention configuration, so nothing is deleted.",
            where=where,
            fix="Materialize the system_health_config asset (it inserts the default row) and run again.",
        )
    problems = validate_config(cfg)
    lo, hi = USAGE_RETENTION_RANGE
    days = config.usage_event_retention_days
    if days is not None and not lo <= days <= hi:
        problems.append(("usage_event_retention_days", f"must be from {lo} to {hi} days, is {days}"))
    elif (
        days is not None
        and isinstance(cfg.aggregate_retention_days, int)
        and days > cfg.aggregate_retention_days
    ):
        problems.append(
            (
                "usage_event_retention_days",
                f"({days}) must not exceed aggregateRetentionDays ({cfg.aggregate_retention_days}): "
                "raw events would outlive the aggregates they are reconciled against",
            )
        )
    if config.batch_size < 1:
        problems.append(("batch_size", "must be at least 1"))
    if problems:
        raise ErpPipelinesError(
            "The retention configuration is invalid, so nothing is deleted: "
            + "; ".join(f"{key} {message}" for key, message in problems)
            + ".",
            where=where + " (and the run config of retention_pruning)",
            fix="Correct the values (e.g. re-materialize system_health_config or UPDATE the row) and run again.",
        )
    return cfg.metrics_retention_days, cfg.aggregate_retention_days


def _delete_id_range(
    conn: psycopg.Connection, statement: str, lo: int, hi_inclusive: int, batch: int, params: dict[str, Any]
) -> int:
    deleted = 0
    for start in range(lo, hi_inclusive + 1, batch):
        cur = conn.execute(statement, {**params, "lo": start, "hi": start + batch})
        deleted += cur.rowcount
    return deleted


def _prune_raw_days(
    context: dg.AssetExecutionContext,
    conn: psycopg.Connection,
    table: str,
    cutoff_day: date,
    reconcile_and_delete: Any,
) -> tuple[int, int, dict[str, str]]:
    """Walk the days before cutoff that still hold rows; returns (rows deleted, days pruned, skipped days)."""
    next_day = sql.NEXT_SAMPLE_DAY if table == "system_metric_samples" else sql.NEXT_EVENT_DAY
    cutoff, _ = day_bounds(cutoff_day)
    from_start = datetime(1970, 1, 1)
    deleted = pruned = 0
    skipped: dict[str, str] = {}
    while True:
        with conn.transaction():
            day = conn.execute(next_day, {"from_start": from_start, "cutoff": cutoff}).fetchone()[0]
        if day is None:
            break
        day_start, day_end = day_bounds(day)
        from_start = day_end
        try:
            with conn.transaction():
                _lock(conn, table)
                n = reconcile_and_delete(day, {"day": day, "day_start": day_start, "day_end": day_end})
        except _Skip as why:
            skipped[str(day)] = str(why)
            context.log.warning(f"{table} {day}: kept, {why}")
            continue
        except (psycopg.errors.SerializationFailure, psycopg.errors.LockNotAvailable) as exc:
            skipped[str(day)] = f"changed or locked while pruning ({type(exc).__name__}); retried next run"
            context.log.warning(f"{table} {day}: kept, {skipped[str(day)]}")
            continue
        deleted += n
        pruned += 1
        context.log.info(f"{table} {day}: deleted {n} row(s) (reconciled); {deleted} so far")
    return deleted, pruned, skipped


@dg.asset(
    key="retention_pruning",
    deps=[
        system_metric_daily,
        client_daily_usage,
        "system_health_config",
        SYSTEM_METRIC_SAMPLES,
        CLIENT_USAGE_EVENTS,
    ],
    kinds={"postgres"},
    pool=ERP_DB_POOL,
    group_name=GROUP,
    retry_policy=RETRY_POLICY,
)
def retention_pruning(
    context: dg.AssetExecutionContext, config: RetentionConfig, erp_db: ErpDatabase
) -> dg.MaterializeResult:
    """Delete what the retention settings allow, never a raw row whose day lacks a reconciled aggregate."""
    with step_errors():
        return _prune(context, config, erp_db)


def _prune(context: dg.AssetExecutionContext, config: RetentionConfig, erp_db: ErpDatabase) -> dg.MaterializeResult:
    categories = category_params(config.event_categories)
    today = guard_today(config.today)
    batch = config.batch_size
    with erp_connection(erp_db, "retention", RETENTION_PRIVILEGES) as conn:
        metrics_days, aggregate_days = _load_settings(conn, erp_db.db_schema, config)
        conn.rollback()
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        samples_cutoff = today - timedelta(days=metrics_days)
        aggregate_cutoff = today - timedelta(days=aggregate_days)
        context.log.info(
            f"Retention: samples before {samples_cutoff} ({metrics_days} days), aggregates before "
            f"{aggregate_cutoff} ({aggregate_days} days), usage events "
            + (
                f"before {today - timedelta(days=config.usage_event_retention_days)}"
                if config.usage_event_retention_days
                else "kept (usage_event_retention_days not set)"
            )
        )

        def prune_sample_day(day: date, params: dict[str, Any]) -> int:
            samples, req, err, min_id, max_id, agg_req, agg_err, has_aggregate = conn.execute(
                rollup_sql.METRIC_DAY_RECONCILE, params
            ).fetchone()
            if not has_aggregate:
                raise _Skip(f"{samples} sample(s) but no system_metric_daily row (not rolled up)")
            if (agg_req, agg_err) != (req, err):
                raise _Skip(
                    f"system_metric_daily says {agg_req} requests/{agg_err} errors, the samples {req}/{err} "
                    "(re-materialize the partition)"
                )
            return _delete_id_range(conn, sql.DELETE_SAMPLES_BATCH, min_id, max_id, batch, params)

        def prune_event_day(day: date, params: dict[str, Any]) -> int:
            events, min_id, max_id = conn.execute(sql.EVENT_DAY_IDS, params).fetchone()
            mismatched, aggregate_rows, _raw_pairs = conn.execute(
                rollup_sql.USAGE_DAY_MISMATCHES, {**params, **categories}
            ).fetchone()
            if aggregate_rows == 0:
                raise _Skip(f"{events} event(s) but no client_daily_usage rows (not rolled up)")
            if mismatched:
                raise _Skip(
                    f"{mismatched} (client, module) pair(s) of client_daily_usage differ from the raw events "
                    "(re-materialize the partition)"
                )
            return _delete_id_range(conn, sql.DELETE_EVENTS_BATCH, min_id, max_id, batch, params)

        deleted: dict[str, int] = {}
        days_pruned: dict[str, int] = {}
        skipped: dict[str, dict[str, str]] = {}
        n, d, s = _prune_raw_days(context, conn, "system_metric_samples", samples_cutoff, prune_sample_day)
        deleted["system_metric_samples"], days_pruned["system_metric_samples"] = n, d
        skipped["system_metric_samples"] = s
        if config.usage_event_retention_days is not None:
            events_cutoff = today - timedelta(days=config.usage_event_retention_days)
            n, d, s = _prune_raw_days(context, conn, "client_usage_events", events_cutoff, prune_event_day)
        else:
            n, d, s = 0, 0, {}
        deleted["client_usage_events"], days_pruned["client_usage_events"] = n, d
        skipped["client_usage_events"] = s

        deleted["system_metric_daily"], deleted["client_daily_usage"] = _prune_aggregates(
            context, conn, aggregate_cutoff, batch
        )

    n_skipped = sum(len(s) for s in skipped.values())
    if n_skipped:
        context.log.warning(f"{n_skipped} raw day(s) kept because they do not reconcile with an aggregate.")
    context.log.info(f"Retention done: deleted {deleted}.")
    return dg.MaterializeResult(
        metadata={
            **{f"deleted_{table}": dg.MetadataValue.int(int(v)) for table, v in deleted.items()},
            **{f"days_pruned_{table}": dg.MetadataValue.int(int(v)) for table, v in days_pruned.items()},
            "days_skipped": dg.MetadataValue.int(n_skipped),
            "skipped_days": dg.MetadataValue.json(skipped),
            "samples_cutoff_day": dg.MetadataValue.text(str(samples_cutoff)),
            "aggregate_cutoff_day": dg.MetadataValue.text(str(aggregate_cutoff)),
            "metrics_retention_days": dg.MetadataValue.int(int(metrics_days)),
            "aggregate_retention_days": dg.MetadataValue.int(int(aggregate_days)),
        }
    )


def _prune_aggregates(
    context: dg.AssetExecutionContext, conn: psycopg.Connection, cutoff_day: date, batch: int
) -> tuple[int, int]:
    """Whole days older than the aggregate cutoff, each batch its own short transaction."""
    cutoff, _ = day_bounds(cutoff_day)
    with conn.transaction():
        lo, hi, _count = conn.execute(sql.OLD_METRIC_DAILY_IDS, {"cutoff": cutoff}).fetchone()
    metric_deleted = 0
    if lo is not None:
        for start in range(lo, hi + 1, batch):
            with conn.transaction():
                _lock(conn, "system_metric_daily")
                metric_deleted += conn.execute(
                    sql.DELETE_METRIC_DAILY_BATCH, {"lo": start, "hi": start + batch, "cutoff": cutoff}
                ).rowcount
        context.log.info(f"system_metric_daily: deleted {metric_deleted} day(s) before {cutoff_day}")
    usage_deleted = 0
    while True:
        with conn.transaction():
            _lock(conn, "client_daily_usage")
            day = conn.execute(sql.OLDEST_USAGE_DAY, {"cutoff_day": cutoff_day}).fetchone()[0]
            if day is None:
                break
            n = conn.execute(sql.DELETE_USAGE_DAY, {"day": day}).rowcount
        usage_deleted += n
        context.log.info(f"client_daily_usage {day}: deleted {n} row(s); {usage_deleted} so far")
    return metric_deleted, usage_deleted
