"""A declared rollup as a `RollupSpec` with its body: what every YAML instance without `implementation` runs.

Why a module: the instances (erp_pipelines/defs/rollups/*/defs.yaml, rollups/component.py) hold data only;
this turns a declaration into its spec and the spec's body (what its asset step does differently); the
asset itself is built by the machine every rollup shares (rollups/machine.py), exactly as for the two
original rollups. Its statements come from rollups/declared_sql.py (or a hand-written day statement, the
escape hatch), its per-day loop, ledger, pruned days and chunked transactions from rollups/steps.py.

Checks of every declared rollup: `rows_match_raw` (blocking: the day's rows read back hold exactly what the
write computed from the raw rows it fingerprinted; run config `recompute_check` adds the independent
recomputation), `no_rows_without_key` (WARN: raw rows with a NULL key column are in no aggregate row, so
their day is never pruned), `no_non_finite_values` (WARN: NaN/Infinity kept out of sums and means), and
the ones every rollup has (raw times in UTC, late rows for pruned days, freshness).
"""



from datetime import date
from decimal import Decimal
from functools import partial
from typing import Any

import dagster as dg
import psycopg

from erp_pipelines.rollups import declared_sql, ledger, machine, steps
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
        check_names=(RECONCILIATION_CHECK, NULL_KEY_CHECK, NON_FINITE_CHECK, *steps.SHARED_CHECK_NAMES),
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
        body=body(decl),
    )
    spec_holder.append(spec)
    return spec


def body(decl: declared_sql.RollupDecl) -> machine.RollupBody:
    """What a declared rollup's asset step does (rollups/machine.py runs it): the generated write, the checks
    of every declared rollup, the count_if value lists as parameters."""
    keys = ", ".join(decl.keys) or "key"

    def window_rows(conn: psycopg.Connection, window: machine.Window) -> int:
        return int(conn.execute(declared_sql.window_rows(decl, _own_schema()), window).fetchone()[0])

    return machine.RollupBody(
        config_type=RollupStepConfig,
        write_day=partial(write_day, decl),
        checks=(
            machine.CheckDecl(
                RECONCILIATION_CHECK, blocking=True,
                description=f"Per day, the rows of {decl.aggregate_table} read back hold exactly what the write "
                f"computed from the {decl.raw_table} rows it fingerprinted, in the same snapshot (run config "
                "recompute_check adds an independent recomputation); blocks retention_pruning in the same run "
                "when not.",
            ),
            machine.CheckDecl(
                NULL_KEY_CHECK,
                description=f"Per day: raw rows with a NULL {keys} are in no row of {decl.aggregate_table}; they "
                "stay raw (never pruned).",
            ),
            machine.CheckDecl(
                NON_FINITE_CHECK,
                description="Per day: NaN or Infinity in a measured column, kept out of sums and means.",
            ),
        ),
        window_rows=window_rows,
        day_checks={
            NULL_KEY_CHECK: lambda r, _extra: _count_day(
                r.day, int(r.extra.get("null_key", 0)), f"raw row(s) of {decl.raw_table} have a NULL key column: "
                "in no aggregate row, kept raw (never pruned).", "every raw row has its key.",
                dg.AssetCheckSeverity.WARN, "null_key_rows"),
            NON_FINITE_CHECK: lambda r, _extra: _count_day(
                r.day, int(r.extra.get("non_finite", 0)), "NaN/Infinity value(s) in measured columns, kept out "
                "of sums and means.", "every measured value is finite.", dg.AssetCheckSeverity.WARN,
                "non_finite_values"),
        },
        params=lambda _config: decl.params(),
        run_metadata=lambda results, _extra: {
            "null_key_rows": dg.MetadataValue.int(sum(int(r.extra.get("null_key", 0)) for r in results)),
            "non_finite_values": dg.MetadataValue.int(sum(int(r.extra.get("non_finite", 0)) for r in results)),
        },
        zero_when_not_read=("null_key_rows", "non_finite_values"),
    )


def _own_schema() -> str:
    from erp_pipelines.own_schema import own_schema_name

    return own_schema_name()
