"""`system_metric_daily`: one row per UTC day of `system_metric_samples`, request-weighted.

Both are partitioned by UTC day (`erp_pipelines.partitions.DAILY_PARTITIONS`) and computed inside
PostgreSQL, one set-based statement per day (see sql.py for why one statement per day and not per
window). A run covers `context.partition_time_window`: one day for the nightly run, N days for a backfill,
which `BackfillPolicy.single_run()` makes ONE run.

Transactions: the whole window is written in ONE REPEATABLE READ transaction, one statement per day.
All its statements see one snapshot, so the reconciliation compares each day's aggregate with exactly the
raw rows it was computed from: a row the app commits meanwhile (late data) is not half-seen (with READ
COMMITTED it made the blocking reconciliation check fail the run; found by the concurrency test), it is
picked up by the late-data sensor. The run then either
changes every partition it reports as materialized or none (a failure on day 200 of a backfill rolls back
days 1-199, and Dagster marks all of them failed, so the database and the UI never disagree). The cost is
one long transaction for a big backfill; it only holds row locks on the aggregate rows it rewrites (the app
inserts raw rows, which nothing here locks), so it delays no ERP write. Re-running is always safe: each
day's result is exactly the rollup of that day's raw rows, whatever was there before.

A day whose raw rows are gone (pruned by `retention_pruning`) keeps its aggregate untouched; the run says
so in the log and in the `days_kept_without_raw_rows` metadata.

Data-loss guard: a day whose raw rows are only PARTLY there must not be re-aggregated either (late rows that
arrive for a pruned day would otherwise replace the day's aggregate with the rollup of the late rows
alone). So a day that already has an aggregate keeps it when the day is older than the raw retention cutoff
(today - metricsRetentionDays for samples; today - `usage_event_retention_days` for events, if set), or when
its raw totals are LOWER than the aggregate's (reqCount/errCount; the total categorized event count). Such
days are logged and listed in the `days_kept_raw_incomplete` metadata, and left out of the reconciliation
(they cannot reconcile: their raw rows are incomplete). "today" is the wall clock's UTC day unless the
run config sets `today` (replays and tests).

Locks: each rollup's write transaction is wrapped in the advisory lock
`pg_advisory_lock(hashtext('erp_pipelines:<table>'))` (rollups/sql.py, taken just before the transaction
and released just after it, so the snapshot starts after the wait), so two runs writing the same table
(overlapping backfills, a backfill and the nightly run) serialize: the second waits for the first to
commit, then rewrites the days with what is committed, and the result equals one run. That one wait is not
bounded by `lock_timeout` (the other run may legitimately hold it for a whole backfill) but by
`statement_timeout`. Retention takes the same locks (transaction-level, with `lock_timeout`) before it
reconciles and deletes.

Errors: a lost connection (server restart, terminated backend) becomes `DatabaseUnavailable` (the Failure
is retryable, and the asset's RetryPolicy retries it; the transaction was rolled back, so nothing was
half-written); a missing privilege becomes an ErpPipelinesError naming the GRANT to run (not retried).
"""


from datetime import date
from typing import Any

import dagster as dg
import psycopg
from pydantic import Field

from erp_pipelines.dbwork import erp_connection, step_errors, write_transaction
from erp_pipelines.partitions import DAILY_PARTITIONS, day_bounds
from erp_pipelines.resources import ErpDatabase
from erp_pipelines.rollups import checks, sql
from erp_pipelines.rollups.spec import ERP_DB_POOL, GROUP, RETRY_POLICY, RollupSpec
from erp_pipelines.rollups.steps import (
    guard_today,
    incomplete_reason,
    log_incomplete,
    now_naive,
    samples_cutoff,
    table_name_metadata,
    window_days,
)

SYSTEM_METRIC_SAMPLES = dg.AssetSpec(
    "system_metric_samples",
    description="Raw health samples the ERP writes every refresh interval (latency, error rate, request "
    "and error counts). Written by the app, never by Dagster; observed by `erp_raw_tables_sensor`, pruned "
    "by `retention_pruning` once a day's totals are safe in `system_metric_daily`.",
    kinds={"postgres"},
    group_name=GROUP,
    metadata={"dagster/table_name": "system_metric_samples"},
)
METRIC_RECONCILIATION_CHECK = "totals_match_samples"
METRIC_HEALTH_CHECK = "health_thresholds"

METRIC_DAILY = RollupSpec(
    aggregate_table="system_metric_daily",
    aggregate_day_column="day",
    aggregate_key=("day",),
    raw_table="system_metric_samples",
    ts_column="collected_at",
    id_column="id",
    raw_columns=("latencyMs", "errorRatePct", "reqCount", "errCount", "collected_at"),
    raw_spec=SYSTEM_METRIC_SAMPLES,
    description="One row per UTC day of system_metric_samples, request-weighted (formula in sql.py).",
    privileges={
        "system_metric_samples": "SELECT",
        "system_health_config": "SELECT",
        "system_metric_daily": "SELECT, INSERT, UPDATE, DELETE",
    },
    retention_privileges={"system_metric_samples": "SELECT, DELETE", "system_metric_daily": "SELECT, DELETE"},
    reconciliation_check=METRIC_RECONCILIATION_CHECK,
    check_names=(METRIC_RECONCILIATION_CHECK, METRIC_HEALTH_CHECK),
    replace_day_sql=sql.METRIC_DAY_UPSERT,
    reconcile_day_sql=sql.METRIC_DAY_RECONCILE,
)

class MetricRollupConfig(dg.Config):
    today: str | None = Field(
        default=None,
        description="The UTC day (YYYY-MM-DD) taken as 'today' by the data-loss guard's retention cutoff. "
        "Unset (the default): the wall clock. For replays and tests only.",
    )



@dg.asset(
    key="system_metric_daily",
    deps=[SYSTEM_METRIC_SAMPLES, "erp_schema"],
    partitions_def=DAILY_PARTITIONS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"postgres"},
    pool=ERP_DB_POOL,
    group_name=GROUP,
    retry_policy=RETRY_POLICY,
    check_specs=[
        dg.AssetCheckSpec(
            METRIC_RECONCILIATION_CHECK,
            asset="system_metric_daily",
            blocking=True,
            description="reqCount/errCount of every rolled-up day equal the sums of its samples; blocks "
            "retention_pruning in the same run when they do not.",
        ),
        dg.AssetCheckSpec(
            METRIC_HEALTH_CHECK,
            asset="system_metric_daily",
            additional_deps=["system_health_config"],
            description="The day's avgLatencyMs and avgErrorRatePct (for a backfill: its worst day, every "
            "breaching day listed) against system_health_config.thresholds (latency, errorRate): WARN at "
            "warning, ERROR at critical.",
        ),
    ],
)
def system_metric_daily(
    context: dg.AssetExecutionContext, config: MetricRollupConfig, erp_db: ErpDatabase
) -> dg.MaterializeResult:
    """One row per UTC day of `system_metric_samples`, request-weighted (formula and why in sql.py)."""
    with step_errors():
        return _roll_up_metrics(context, config, erp_db)


def _roll_up_metrics(
    context: dg.AssetExecutionContext, config: MetricRollupConfig, erp_db: ErpDatabase
) -> dg.MaterializeResult:
    days, window_start, window_end = window_days(context)
    now = now_naive()
    today = guard_today(config.today)
    inserted = updated = samples_read = 0
    kept: list[str] = []
    kept_incomplete: dict[str, str] = {}
    mismatched: dict[date, str] = {}
    fingerprints: dict[str, dict[str, int]] = {}
    days_with_raw = 0
    with erp_connection(erp_db, "rollup:system_metric_daily", METRIC_DAILY.privileges) as conn:
        cutoff = samples_cutoff(conn, today)
        with write_transaction(conn, METRIC_DAILY.lock_key):
            for day in days:
                day_start, day_end = day_bounds(day)
                params = {"day_start": day_start, "day_end": day_end, "now": now}
                # The data-loss guard only concerns a day that already has an aggregate (one index
                # lookup); a new day, the nightly case, is not read twice.
                has_aggregate = conn.execute(sql.METRIC_DAY_ROW, {"day_start": day_start}).fetchone() is not None
                if has_aggregate:
                    samples, req, err, _min_id, max_id, agg_req, agg_err, _ = conn.execute(
                        sql.METRIC_DAY_RECONCILE, params
                    ).fetchone()
                if has_aggregate and samples > 0:
                    why = incomplete_reason(
                        day, cutoff, [("reqCount", req, agg_req), ("errCount", err, agg_err)]
                    )
                    if why:
                        kept_incomplete[str(day)] = why
                        fingerprints[str(day)] = {"rows": int(samples), "max_id": int(max_id or 0)}
                        samples_read += samples
                        continue
                written = conn.execute(sql.METRIC_DAY_UPSERT, params).fetchall()
                inserted += sum(1 for (was_insert,) in written if was_insert)
                updated += sum(1 for (was_insert,) in written if not was_insert)
                samples, req, err, _min_id, max_id, agg_req, agg_err, has_aggregate = conn.execute(
                    sql.METRIC_DAY_RECONCILE, params
                ).fetchone()
                fingerprints[str(day)] = {"rows": int(samples), "max_id": int(max_id or 0)}
                samples_read += samples
                if samples == 0:
                    if has_aggregate:
                        kept.append(str(day))
                    continue
                days_with_raw += 1
                if not has_aggregate:
                    mismatched[day] = "no aggregate row"
                elif (agg_req, agg_err) != (req, err):
                    mismatched[day] = f"aggregate {agg_req}/{agg_err} requests/errors, samples {req}/{err}"
            row_count = conn.execute(
                sql.METRIC_WINDOW_ROWS, {"window_start": window_start, "window_end": window_end}
            ).fetchone()[0]
            day_rows = {
                day: conn.execute(sql.METRIC_DAY_ROW, {"day_start": day_bounds(day)[0]}).fetchone()
                for day in days
            }
        thresholds = _read_thresholds(conn)
    if kept:
        context.log.info(
            f"{len(kept)} day(s) have no samples left (pruned) but keep their aggregate unchanged: "
            + ", ".join(kept[:20])
            + (" ..." if len(kept) > 20 else "")
        )
    log_incomplete(context, "system_metric_daily", kept_incomplete)
    context.log.info(
        f"system_metric_daily {days[0]}..{days[-1]}: {samples_read} samples read, {inserted} rows inserted, "
        f"{updated} updated, {len(kept)} day(s) kept without raw rows."
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(int(row_count)),
            "dagster/table_name": table_name_metadata(erp_db, "system_metric_daily"),
            "rows_written": dg.MetadataValue.int(inserted + updated),
            "rows_inserted": dg.MetadataValue.int(inserted),
            "rows_updated": dg.MetadataValue.int(updated),
            "samples_read": dg.MetadataValue.int(int(samples_read)),
            "days_in_window": dg.MetadataValue.int(len(days)),
            "days_with_raw_rows": dg.MetadataValue.int(days_with_raw),
            "days_kept_without_raw_rows": dg.MetadataValue.int(len(kept)),
            "days_kept_raw_incomplete": dg.MetadataValue.json(kept_incomplete),
            "raw_fingerprints": dg.MetadataValue.json(fingerprints),
        },
        check_results=[
            checks.reconciliation_result(
                METRIC_RECONCILIATION_CHECK,
                "system_metric_daily",
                mismatched,
                days_with_raw,
                len(days) - days_with_raw,
            ),
            checks.worst_health_result(METRIC_HEALTH_CHECK, "system_metric_daily", day_rows, thresholds),
        ],
    )


READ_THRESHOLDS = "SELECT thresholds FROM system_health_config WHERE id = 1"


def _read_thresholds(conn: psycopg.Connection) -> Any:
    """system_health_config.thresholds, or None if the row (or the table) is missing."""
    try:
        with conn.transaction():
            row = conn.execute(READ_THRESHOLDS).fetchone()
    except psycopg.errors.UndefinedTable:
        return None
    return row[0] if row else None

