"""A declared rollup as a `RollupSpec` and an asset: the generic daily-rollup machine every YAML instance runs.

Why a module: the instances (erp_pipelines/defs/rollups/*/defs.yaml, rollups/component.py) hold data only;
this is the one asset body they share. Its statements come from rollups/declared_sql.py (or a hand-written
day statement, the escape hatch), its per-day loop, ledger, pruned days and chunked transactions from
rollups/steps.py, exactly as for the two original rollups.

Checks of every declared rollup: `rows_match_raw` (blocking: the day's rows read back hold exactly what the
write computed from the raw rows it fingerprinted; run config `recompute_check` adds the independent
recomputation), `no_rows_without_key` (WARN: raw rows with a NULL key column are in no aggregate row, so
their day is never pruned), `no_non_finite_values` (WARN: NaN/Infinity kept out of sums and means), and
the ones every rollup has (raw times in UTC, late rows for pruned days, freshness).
"""



from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import dagster as dg
import psycopg

from erp_pipelines.dbwork import step_errors
from erp_pipelines.resources import ErpDatabase
from erp_pipelines.rollups import daily_report, declared_sql, ledger, steps, time_zone
from erp_pipelines.rollups.daily_report import DayCheck
from erp_pipelines.rollups.spec import GROUP, BoundSql, Reconciliation, RollupSpec
from erp_pipelines.rollups.steps import RollupStepConfig

RECONCILIATION_CHECK = "rows_match_raw"
NULL_KEY_CHECK = "no_rows_without_key"
NON_FINITE_CHECK = "no_non_finite_values"


def read_reconciliation(conn: psycopg.Connection, bound: BoundSql, params: dict[str, Any]) -> Reconciliation:
    """The stored rows against the independent recomputation, and the day's fingerprint, in one read.
    Raw rows with a NULL key are in no aggregate row: their day does not reconcile (kept raw)."""
    mismatched, aggregate_rows, null_key, _non_finite, raw_rows, raw_hash = conn.execute(
        bound.reconcile_day_sql, params
    ).fetchone()
    fingerprint = ledger.Fingerprint(int(raw_rows), Decimal(raw_hash))
    if null_key:
        return Reconciliation(fingerprint, f"{null_key} raw row(s) have a NULL key column: no aggregate row holds them")
    if aggregate_rows == 0 and raw_rows:
        return Reconciliation(fingerprint, "no aggregate rows")
    if mismatched:
        return Reconciliation(fingerprint, f"{mismatched} key group(s) differ from an independent recomputation")
    return Reconciliation(fingerprint, None)


def write_day(
    decl: declared_sql.RollupDecl, conn: psycopg.Connection, day: date, params: dict[str, Any], bound: BoundSql
) -> steps.DayWrite:
    """Replace one day's rows (one read of the day, which also gives its fingerprint), read them back in the
    same snapshot and compare their number and hash with what the write computed."""
    (raw_rows, raw_hash, null_key, non_finite, rollup_rows, rollup_hash, inserted, updated, deleted) = conn.execute(
        bound.replace_day_sql, params
    ).fetchone()
    aggregate_rows, aggregate_hash, *figures = conn.execute(bound.more["readback"], params).fetchone()
    mismatches = []
    if (aggregate_rows, aggregate_hash) != (rollup_rows, rollup_hash):
        mismatches.append(
            f"the day's {aggregate_rows} aggregate row(s) differ from the {rollup_rows} computed from the raw rows"
        )
    if params.get("recompute_check"):
        reading = read_reconciliation(conn, bound, params)
        if reading.mismatch and not null_key:
            mismatches.append(reading.mismatch)
    return steps.DayWrite(
        fingerprint=ledger.Fingerprint(int(raw_rows), Decimal(raw_hash)),
        inserted=int(inserted),
        updated=int(updated),
        deleted=int(deleted),
        mismatch="; ".join(mismatches) or None,
        figures={
            **{m.name: (None if v is None else float(v)) for m, v in zip(decl.measures, figures, strict=True)},
            "aggregate_rows": int(aggregate_rows),
            "null_key_rows": int(null_key),
            "non_finite_values": int(non_finite),
        },
        extra={"null_key": int(null_key), "non_finite": int(non_finite)},
    )


def _count_day(day: date, n: int, what: str, ok: str, severity: dg.AssetCheckSeverity, key: str) -> DayCheck:
    return DayCheck(day, n == 0, f"{day}: {ok}" if n == 0 else f"{day}: {n} {what}", severity=severity,
                    metadata={key: dg.MetadataValue.int(n)})


def build_spec(
    decl: declared_sql.RollupDecl,
    *,
    description: str,
    raw_description: str,
    ts_type: str,
    raw_retention: str | None,
    day_statement: str | None = None,
) -> RollupSpec:
    """The spec of a declared rollup: its tables, columns, privileges and statements (built per connection)."""
    raw_spec = dg.AssetSpec(
        decl.raw_table,
        description=raw_description or f"Raw rows of {decl.raw_table}, written by the ERP; rolled up by "
        f"{decl.aggregate_table}.",
        kinds={"postgres"},
        group_name=GROUP,
        metadata={"dagster/table_name": decl.raw_table},
    )
    spec_holder: list[RollupSpec] = []

    def binder(conn: psycopg.Connection) -> BoundSql:
        return declared_sql.bind(conn, decl, spec_holder[0].fingerprint_sql, day_statement)

    spec = RollupSpec(
        aggregate_table=decl.aggregate_table,
        aggregate_day_column=decl.day_column,
        aggregate_key=(decl.day_column, *decl.keys),
        raw_table=decl.raw_table,
        ts_column=decl.ts_column,
        id_column=decl.id_column,
        raw_columns=decl.read_columns,
        raw_key_columns=decl.keys,  # a raw row with a NULL key is in no aggregate row: never pruned
        raw_spec=raw_spec,
        description=description,
        privileges={decl.raw_table: "SELECT", decl.aggregate_table: "SELECT, INSERT, UPDATE, DELETE"},
        retention_privileges={decl.raw_table: "SELECT, DELETE", decl.aggregate_table: "SELECT, DELETE"},
        reconciliation_check=RECONCILIATION_CHECK,
        check_names=(RECONCILIATION_CHECK, NULL_KEY_CHECK, NON_FINITE_CHECK, time_zone.TIME_ZONE_CHECK,
                     steps.LATE_ROWS_CHECK),
        replace_day_sql="",  # built per connection by `binder`
        reconcile_day_sql="",
        read_reconciliation=read_reconciliation,
        aggregate_exists_sql="",
        delete_day_sql="",
        raw_below_aggregate_sql="",
        ts_type=ts_type,
        raw_retention=raw_retention,
        binder=binder,
        extra={"declaration": decl, "aggregate_schema": "own"},
    )
    spec_holder.append(spec)
    return spec


def build_asset(spec: RollupSpec) -> dg.AssetsDefinition:
    """The asset of a declared rollup (one body for every instance)."""
    decl: declared_sql.RollupDecl = spec.extra["declaration"]
    key = spec.asset_key

    @steps.rollup_asset(
        spec,
        [
            daily_report.daily_check_spec(
                RECONCILIATION_CHECK, key, blocking=True,
                description=f"Per day, the rows of {key} read back hold exactly what the write computed from "
                f"the {spec.raw_table} rows it fingerprinted, in the same snapshot (run config recompute_check "
                "adds an independent recomputation); blocks retention_pruning in the same run when not.",
            ),
            daily_report.daily_check_spec(
                NULL_KEY_CHECK, key,
                description=f"Per day: raw rows with a NULL {', '.join(decl.keys) or 'key'} are in no row of "
                f"{key}; they stay raw (never pruned).",
            ),
            daily_report.daily_check_spec(
                NON_FINITE_CHECK, key,
                description="Per day: NaN or Infinity in a measured column, kept out of sums and means.",
            ),
        ],
    )
    def _declared_rollup(
        context: dg.AssetExecutionContext, config: RollupStepConfig, erp_db: ErpDatabase
    ) -> Iterator[daily_report.ReportEvent]:
        with step_errors():
            yield from _run(context, config, erp_db, spec, decl)

    return _declared_rollup


def _run(
    context: dg.AssetExecutionContext,
    config: steps.RollupStepConfig,
    erp_db: ErpDatabase,
    spec: RollupSpec,
    decl: declared_sql.RollupDecl,
) -> Iterator[daily_report.ReportEvent]:
    days, _start, _end = steps.window_days(context)
    window = {"first_day": days[0], "end_day": days[-1] + timedelta(days=1)}

    def window_rows(conn: psycopg.Connection) -> int:
        return int(conn.execute(spec.bind(conn).more["window_rows"], window).fetchone()[0])

    run = steps.roll_up_window(
        context, erp_db, spec, days, partial(write_day, decl),
        {"now": steps.now_naive(), "recompute_check": config.recompute_check,
         steps.ADOPT: config.adopt_existing_aggregates, **decl.params()},
        config.days_per_transaction, after=window_rows,
    )
    results = run.results
    steps.log_outcomes(context, spec, results)
    totals = {k: sum(getattr(r, f"rows_{k}") for r in results) for k in ("inserted", "updated", "deleted")}
    null_key = sum(int(r.extra.get("null_key", 0)) for r in results)
    non_finite = sum(int(r.extra.get("non_finite", 0)) for r in results)
    context.log.info(
        f"{spec.aggregate_table} {days[0]}..{days[-1]}: {sum(r.raw_rows for r in results)} raw rows read, "
        f"{totals['inserted']} rows inserted, {totals['updated']} updated, {totals['deleted']} deleted."
    )
    yield from daily_report.report(
        context,
        spec.asset_key,
        run_metadata={
            "dagster/row_count": dg.MetadataValue.int(int(run.extra)),
            "rows_written": dg.MetadataValue.int(sum(r.rows_written for r in results)),
            **{f"rows_{k}": dg.MetadataValue.int(v) for k, v in totals.items()},
            "null_key_rows": dg.MetadataValue.int(null_key),
            "non_finite_values": dg.MetadataValue.int(non_finite),
            **steps.window_metadata(results, len(days), config.days_per_transaction),
        },
        days=[
            steps.day_figures(r, steps.RAW_ROWS_READ, ("null_key_rows", "non_finite_values")) for r in results
        ],
        checks={
            RECONCILIATION_CHECK: [steps.reconciliation_day(r) for r in results],
            NULL_KEY_CHECK: [
                _count_day(r.day, int(r.extra.get("null_key", 0)), f"raw row(s) of {spec.raw_table} have a NULL "
                           "key column: in no aggregate row, kept raw (never pruned).", "every raw row has its key.",
                           dg.AssetCheckSeverity.WARN, "null_key_rows")
                for r in results
            ],
            NON_FINITE_CHECK: [
                _count_day(r.day, int(r.extra.get("non_finite", 0)), "NaN/Infinity value(s) in measured columns, "
                           "kept out of sums and means.", "every measured value is finite.",
                           dg.AssetCheckSeverity.WARN, "non_finite_values")
                for r in results
            ],
        },
        day_extra={"dagster/table_name": dg.MetadataValue.text(f"{_own_schema()}.{spec.aggregate_table}")},
        run_checks=[time_zone.time_zone_result(spec, run.findings), steps.late_rows_result(spec, results, run.late_rows_by_pruned_day)],
    )


def _own_schema() -> str:
    from erp_pipelines.own_schema import own_schema_name

    return own_schema_name()
