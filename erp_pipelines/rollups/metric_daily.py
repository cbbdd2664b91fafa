"""`system_metric_daily`: one row per UTC day of `system_metric_samples`, request-weighted.

Partitioned by UTC day (`erp_pipelines.partitions.DAILY_PARTITIONS`) and computed inside PostgreSQL: per
day one set-based read (which PostgreSQL may run with parallel workers) and a one-row upsert of its figures
(rollups/sql.py says why, and gives the formula). A run covers
`context.partition_time_window`: one day nightly, N days for a backfill, which `BackfillPolicy.single_run()`
makes ONE run. The asset step is the one every rollup runs (rollups/machine.py, from `BODY` below: what
this rollup does differently, as data); the per-day loop, its chunked transactions, the ledger and what a
pruned day does are shared by every rollup: rollups/steps.py.

Checks: reconciliation (every column of each rolled-up day, read back, equals what the write computed from
its raw samples AND an independent recomputation, both from the same read in the same snapshot; blocking,
so retention in the same run waits), health thresholds (the worst day of the
window), samples without a timestamp (WARN), late rows for pruned days (WARN), raw times in UTC (ERROR).

Errors: a lost connection becomes `DatabaseUnavailable` (retried by the RetryPolicy; the chunk in progress
was rolled back, committed chunks stay and a retry recomputes them identically); a missing privilege names
the GRANT to run (dbwork.py); a day whose reqCount sum does not fit the integer column names the fix.
"""

from datetime import date
from decimal import Decimal
from typing import Any

import dagster as dg
import psycopg

from erp_pipelines.rollups import checks, daily_report, ledger, machine, sql, steps
from erp_pipelines.rollups.spec import GROUP, BoundSql, Reconciliation, RollupSpec

SYSTEM_METRIC_SAMPLES = dg.AssetSpec(
    "system_metric_samples",
    description="Raw health samples the ERP writes every refresh interval (latency, error rate, request "
    "and error counts). Written by the app, never by Dagster; observed by `erp_raw_tables_sensor`, pruned "
    "by `retention_pruning` once a day's fingerprint equals the one its aggregate was computed from.",
    kinds={"postgres"},
    group_name=GROUP,
    metadata={"dagster/table_name": "system_metric_samples"},
)

# Check names, next to their asset.
METRIC_RECONCILIATION_CHECK = "totals_match_samples"
METRIC_HEALTH_CHECK = "health_thresholds"
METRIC_NULL_TIMESTAMP_CHECK = "no_samples_without_timestamp"


def _float_equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))


def _latency_within_rounding(mean: Any, stored: Any) -> bool:
    """The independent (unrounded) weighted mean against the stored, rounded avgLatencyMs."""
    if mean is None or stored is None:
        return mean is None and stored is None
    return abs(float(mean) - float(stored)) <= 0.5 + 1e-9 * max(1.0, abs(float(mean)))


def _independent_mismatch(independent: tuple[Any, Any, Any, Any], stored: tuple[Any, Any, Any, Any]) -> str | None:
    """Why the stored row (avgLatencyMs, avgErrorRatePct, reqCount, errCount) differs from the independent
    recomputation (unrounded latency mean, error rate, requests, errors); None: it does not."""
    latency, rate, req, err = independent
    agg_latency, agg_rate, agg_req, agg_err = stored
    if (int(req), int(err)) != (agg_req, agg_err) or not _latency_within_rounding(latency, agg_latency) or (
        not _float_equal(rate, agg_rate)
    ):
        return (
            f"aggregate latency/rate/requests/errors {agg_latency}/{agg_rate}/{agg_req}/{agg_err}, independent "
            f"recomputation {latency}/{rate}/{req}/{err}"
        )
    return None


def read_reconciliation(conn: psycopg.Connection, bound: BoundSql, params: dict[str, Any]) -> Reconciliation:
    """The stored row against an independent recomputation from the samples, and the day's fingerprint, in
    one read (`bound.reconcile_day_sql`: METRIC_DAY_RECONCILE for the step's `recompute_check`; retention
    passes METRIC_RECONCILE_FROM_PARTS, the same figures from the partial rows of its pieces)."""
    (_samples, latency, rate, req, err, agg_latency, agg_rate, agg_req, agg_err, has_aggregate, raw_rows,
     raw_hash) = conn.execute(bound.reconcile_day_sql, params).fetchone()
    fingerprint = ledger.Fingerprint(int(raw_rows), Decimal(raw_hash))
    if not has_aggregate:
        return Reconciliation(fingerprint, "no aggregate row")
    return Reconciliation(
        fingerprint, _independent_mismatch((latency, rate, req, err), (agg_latency, agg_rate, agg_req, agg_err))
    )


class MetricRollupConfig(steps.RollupStepConfig):
    """system_metric_daily's run config: the common rollup fields only."""


def write_metric_day(
    conn: psycopg.Connection, day: date, params: dict[str, Any], bound: BoundSql
) -> steps.DayWrite:
    """Replace one day's row from ONE read of the day, which also gives the day's fingerprint and the
    independent recomputation of the figures (METRIC_DAY_READ, with the per-row hash put in by
    RollupSpec.bind; planned for this day's bounds, `prepare=False`: a prepared statement may get one plan for
    every day, without parallel workers); METRIC_DAY_WRITE upserts the figures, only for a day with samples.
    The row read back (same snapshot) must equal what the write computed AND the independent recomputation;
    then its hash, sealed with the fingerprint, goes into the ledger as verified (`DayWrite.aggregate_hash`),
    and retention needs only the day's fingerprint and the row's hash to prove the row holds the samples.
    """
    (raw_rows, raw_hash, latency, rate, req, err, non_finite, *independent) = conn.execute(
        bound.replace_day_sql, params, prepare=False
    ).fetchone()
    inserted = updated = 0
    if not raw_rows:  # no samples: nothing computed, nothing written (the row a day has stays)
        latency = rate = req = err = None
    else:
        written = conn.execute(
            sql.METRIC_DAY_WRITE, {**params, "latency": latency, "error_rate": rate, "req": req, "err": err}
        ).fetchone()
        if written is not None:
            inserted, updated = (1, 0) if written[0] else (0, 1)
    read_back = conn.execute(sql.METRIC_DAY_ROW, params).fetchone()
    stored, row_hash = (None, None) if read_back is None else (read_back[:4], read_back[4])
    agg_latency, agg_rate, agg_req, agg_err = stored if stored is not None else (None, None, None, None)
    mismatch = None
    if stored is None:
        mismatch = "no aggregate row"
    elif (latency, None if req is None else int(req), None if err is None else int(err)) != (
        agg_latency, agg_req, agg_err
    ) or not _float_equal(rate, agg_rate):
        mismatch = (
            f"aggregate latency/rate/requests/errors {agg_latency}/{agg_rate}/{agg_req}/{agg_err}, "
            f"samples {latency}/{rate}/{req}/{err}"
        )
    elif raw_rows:
        mismatch = _independent_mismatch(tuple(independent), tuple(stored))
    if params.get("recompute_check") and mismatch is None:
        mismatch = read_reconciliation(conn, bound, params).mismatch
    fingerprint = ledger.Fingerprint(int(raw_rows), Decimal(raw_hash))
    verified = None
    if mismatch is None and raw_rows:
        verified = ledger.verification_seal(fingerprint, Decimal(row_hash))
    return steps.DayWrite(
        fingerprint=fingerprint,
        inserted=int(inserted),
        updated=int(updated),
        mismatch=mismatch,
        aggregate_hash=verified,
        figures={
            **dict(zip(daily_report.METRIC_FIGURE_NAMES, (agg_latency, agg_rate, agg_req, agg_err), strict=True)),
            "samples": int(raw_rows),
            "samples_read": int(raw_rows),
            "non_finite_values": int(non_finite),
        },
        extra={"row": (agg_latency, agg_rate, agg_req, agg_err), "non_finite": int(non_finite)},
    )


READ_THRESHOLDS = "SELECT thresholds FROM system_health_config WHERE id = 1"


def read_extras(conn: psycopg.Connection, window: dict[str, Any]) -> tuple[Any, int]:
    """system_health_config.thresholds (None if the row or table is missing) and the NULL-timestamp count
    (read by the machine after the window on its connection in autocommit: a missing table fails its own
    statement only)."""
    try:
        row = conn.execute(READ_THRESHOLDS).fetchone()
    except psycopg.errors.UndefinedTable:
        row = None
    null_ts = conn.execute(sql.SAMPLES_WITHOUT_TIMESTAMP).fetchone()[0]
    return (row[0] if row else None), int(null_ts)


def null_timestamp_result(n: int) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=METRIC_NULL_TIMESTAMP_CHECK,
        asset_key="system_metric_daily",
        passed=n == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            "Every sample has a collected_at."
            if n == 0
            else f"{n} sample(s) of system_metric_samples have a NULL collected_at: they belong to no day and "
            "are in no aggregate (the app wrote NULL explicitly over the column's DEFAULT)."
        ),
        metadata={"samples_without_timestamp": dg.MetadataValue.int(n)},
    )


BODY = machine.RollupBody(
    config_type=MetricRollupConfig,
    write_day=write_metric_day,
    checks=(
        machine.CheckDecl(
            METRIC_RECONCILIATION_CHECK,
            blocking=True,
            description="Per day: every column (avg latency, error rate, requests, errors) read back equals "
            "what the write computed from the samples it fingerprinted AND an independent recomputation (samples "
            "grouped by reqCount), from the same read in the same snapshot; blocks retention_pruning in the same "
            "run when not.",
        ),
        machine.CheckDecl(
            METRIC_HEALTH_CHECK,
            additional_deps=("system_health_config",),
            description="Per day: avgLatencyMs and avgErrorRatePct against system_health_config.thresholds "
            "(latency, errorRate): WARN at warning, ERROR at critical.",
        ),
        machine.CheckDecl(
            METRIC_NULL_TIMESTAMP_CHECK,
            per_day=False,
            description="Samples with a NULL collected_at belong to no day and are in no aggregate.",
        ),
    ),
    window_rows=lambda conn, window: conn.execute(sql.METRIC_WINDOW_ROWS, window).fetchone()[0],
    read_after=read_extras,
    day_checks={
        METRIC_HEALTH_CHECK: lambda r, extra: checks.health_day(r.day, r.extra.get("row"), extra[0]),
    },
    run_checks=lambda run, extra: [null_timestamp_result(extra[1])],
    run_metadata=lambda results, extra: {
        # NaN/Infinity errorRatePct values, kept out of the fallback mean (rollups/sql.py)
        "non_finite_values": dg.MetadataValue.int(sum(int(r.extra.get("non_finite", 0)) for r in results)),
    },
    raw_rows_label="samples_read",
    reports_deleted=False,
    raw_rows_noun="samples",
)
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
        "system_metric_daily_id_seq": "USAGE",  # a sequence: its SERIAL id on INSERT (erp_pipelines/grants.py)
    },
    retention_privileges={"system_metric_samples": "SELECT, DELETE", "system_metric_daily": "SELECT, DELETE"},
    reconciliation_check=METRIC_RECONCILIATION_CHECK,
    check_names=(
        METRIC_RECONCILIATION_CHECK,
        METRIC_HEALTH_CHECK,
        METRIC_NULL_TIMESTAMP_CHECK,
        *steps.SHARED_CHECK_NAMES,
    ),
    replace_day_sql=sql.METRIC_DAY_READ,
    reconcile_day_sql=sql.METRIC_DAY_RECONCILE,
    read_reconciliation=read_reconciliation,
    aggregate_exists_sql=sql.METRIC_DAY_EXISTS,
    delete_day_sql=sql.METRIC_DAY_DELETE,
    raw_below_aggregate_sql=sql.METRIC_RAW_BELOW_AGGREGATE,
    raw_retention="metricsRetentionDays",
    body=BODY,
    day_partials_sql=sql.METRIC_DAY_PARTIALS,
    reconcile_from_parts_sql=sql.METRIC_RECONCILE_FROM_PARTS,
    aggregate_hash_sql=sql.METRIC_AGGREGATE_HASH,
)
system_metric_daily = machine.build_asset(METRIC_DAILY)


# What the instance erp_pipelines/defs/rollups/system_metric_daily/defs.yaml names (`implementation`).
ROLLUP = METRIC_DAILY
ASSET = system_metric_daily
