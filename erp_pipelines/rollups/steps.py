"""The per-day loop every rollup shares: chunks of days, each one short transaction, guarded by the ledger.

A run covers `context.partition_time_window` (one day nightly, N days for a single-run backfill). The days
are written in chunks of `days_per_transaction` (default 1); each chunk is ONE short transaction:

    advisory lock of the aggregate (waited for first, dbwork.write_transaction)
    -> REPEATABLE READ snapshot
    -> per day: replace the day's aggregate AND take the fingerprint of its raw rows in the same read of
       the day, read the aggregate back and compare it with what was computed, write the ledger
    -> delete the day's invalidation marks the snapshot sees
    -> COMMIT

So no transaction of a rollup holds a snapshot or the lock longer than one chunk (measured in bench/), and
a failure loses at most the chunk in progress; a re-run recomputes every day from its raw rows, so it is
idempotent (a day already right is not rewritten: rows, ledger and timestamps stay identical).

What a day becomes (`DayOutcome`):
- PRUNED_KEPT: retention pruned the day (`pruned_days`). Its aggregate is never touched again, whatever
  the run config; raw rows present now are late rows: kept raw (retention never deletes them: their
  fingerprint can never equal the ledger's) and reported by the `no_late_rows_for_pruned_days` WARN check.
  They are not merged: `active_users` (distinct users) cannot be merged exactly without the pruned rows.
- ROLLED_UP: re-aggregated from its raw rows, whatever changed (insert, update, delete, dedup, a row moved
  to another day); the ledger gets the fingerprint of exactly these rows.
- REMOVED: the day has a ledger entry with rows, is not pruned, and the ERP deleted all of its raw rows
  (e.g. a GDPR delete): its aggregate rows are deleted.
- KEPT_WITHOUT_LEDGER: an aggregate with no ledger entry (written before the ledger existed, or our own
  schema was dropped) and no raw row it could hold (none, or only rows with a NULL key): kept as it is.
- EMPTY: no raw rows and no aggregate.

An aggregate with no ledger entry and raw rows is never rewritten from them: our own schema may have been
lost with its `pruned_days`, and late rows for a pruned day would then replace the pruned rows' aggregate.
Not even when they reproduce it exactly: late rows that happen to equal the pruned ones would then be
"held" and pruned, and lost. The run stops with `unledgered_aggregate_error` before anything is written;
run config `adopt_existing_aggregates: true` records such days as pruned (`pruned_days`, 0 rows deleted)
without changing them: from then on they are PRUNED_KEPT, their raw rows stay raw and are reported as late
rows (docs/own_schema.md).

Raw rows with a NULL key column (`RollupSpec.raw_key_columns`) are in no aggregate row: on a pruned day
they are not late rows (`DayResult.null_key_rows`, counted by the rollup's own check; rollups/held_rows.py).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import dagster as dg
import psycopg
from pydantic import Field

from erp_pipelines import own_schema
from erp_pipelines.capture.health import CaptureState, capture_state
from erp_pipelines.dbwork import autocommit, erp_connection, write_transaction
from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.partitions import DAILY_PARTITIONS, days_in_window, to_naive_utc
from erp_pipelines.resources import ErpDatabase
from erp_pipelines.rollups import checks, held_rows, ledger, time_zone
from erp_pipelines.rollups.daily_report import DayCheck, DayFigures
from erp_pipelines.rollups.spec import ERP_DB_POOL, GROUP, RETRY_POLICY, BoundSql, RollupSpec


class RollupStepConfig(dg.Config):
    """Run config every rollup step takes (each rollup's own config adds its specific fields)."""

    days_per_transaction: int = Field(
        default=1,
        description="Days written per transaction in a multi-day run: each chunk is one short transaction "
        "(lock, snapshot, aggregate + ledger, commit), so a backfill never holds a snapshot for long.",
    )
    today: str | None = Field(
        default=None,
        description="Accepted for old run configs and ignored: a pruned day is recognized by the pruned-days "
        "ledger, not by a date.",
    )
    recompute_check: bool = Field(
        default=False,
        description="Also reconcile every day against retention's independent recomputation from its raw rows (a "
        "second read of the day; about doubles the step). Off by default: the step proves the table holds exactly "
        "the rows it computed from the fingerprinted raw rows (system_metric_daily also checks them against an "
        "independent recomputation from the same read, so for it this adds only a second scan), and retention "
        "recomputes independently before it deletes a day the step did not verify.",
    )
    adopt_existing_aggregates: bool = Field(
        default=False,
        description="Adopt aggregate days that have no ledger entry (our own schema was dropped, or they predate "
        "the ledger) and differ from their raw rows: record them as pruned without changing them, instead of "
        "stopping. Their raw rows then stay raw and are reported as late rows (docs/own_schema.md).",
    )

ADOPT = "adopt_existing_aggregates"  # the key of the run config flag in a rollup's params

Figure = int | float | None


class DayOutcome(enum.StrEnum):
    ROLLED_UP = "rolled_up"
    EMPTY = "no_raw_rows"
    REMOVED = "removed_raw_rows_deleted"
    PRUNED_KEPT = "kept_pruned"
    KEPT_WITHOUT_LEDGER = "kept_without_ledger"


@dataclass(frozen=True)
class DayWrite:
    """What a rollup's own per-day function reports after replacing the day (inside the chunk's snapshot)."""

    fingerprint: ledger.Fingerprint  # of the raw rows the write read (the ledger's value for the day)
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    mismatch: str | None = None  # the aggregate read back differs from what the write computed
    # the seal of the aggregate row(s) read back (RollupSpec.aggregate_hash_sql, ledger.verification_seal)
    # when the write verified them against an independent recomputation from the same rows; the ledger
    # records it (None: not verified)
    aggregate_hash: Decimal | None = None
    figures: Mapping[str, Figure] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DayResult:
    """One day of one rollup run: the typed per-day result the per-partition reporting reads."""

    rollup: str
    day: date
    outcome: DayOutcome
    raw_rows: int
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    late_rows: int = 0  # raw rows present for a pruned day (kept raw, reported)
    null_key_rows: int = 0  # raw rows of a pruned day with a NULL key column (in no aggregate; kept raw)
    mismatch: str | None = None
    figures: Mapping[str, Figure] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def rows_written(self) -> int:
        return self.rows_inserted + self.rows_updated + self.rows_deleted

    @property
    def reconciled(self) -> bool:
        return self.mismatch is None


@dataclass(frozen=True)
class WindowRun:
    """What `roll_up_window` returns: the per-day results, the time-zone findings, the rollup's extras."""

    results: list[DayResult]
    findings: time_zone.TimeZoneFindings
    extra: Any
    # late rows over EVERY pruned day of the raw table, not only the window's (held_rows.py)
    late_rows_by_pruned_day: Mapping[date, int] = field(default_factory=dict)
    # the raw table's capture triggers as the run found them (capture/health.py)
    capture: CaptureState | None = None


# (connection, day, parameters, the rollup's statements with the per-row hash put in: RollupSpec.bind)
WriteDay = Callable[[psycopg.Connection, date, dict[str, Any], BoundSql], DayWrite]


def now_naive() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def window_days(context: dg.AssetExecutionContext) -> tuple[list[date], datetime, datetime]:
    window = context.partition_time_window
    return list(days_in_window(window)), to_naive_utc(window.start), to_naive_utc(window.end)


def table_name_metadata(erp_db: ErpDatabase, table: str) -> dg.MetadataValue:
    return dg.MetadataValue.text(f"{erp_db.db_schema}.{table}")


def chunks(days: Sequence[date], size: int) -> Iterator[list[date]]:
    for i in range(0, len(days), max(size, 1)):
        yield list(days[i : i + max(size, 1)])


def _overflow_error(spec: RollupSpec, days: Sequence[date], exc: psycopg.Error) -> ErpPipelinesError:
    return ErpPipelinesError(
        f"A sum of {spec.aggregate_table} for {days[0]}..{days[-1]} does not fit its column "
        f"({(exc.diag.message_primary or str(exc)).strip()}); days before it were committed, this chunk was "
        "rolled back.",
        where=f"table {spec.aggregate_table} (an integer column)",
        fix=f"Widen the column to bigint in the ERP's Prisma schema (`BigInt`, a new migration), then re-run "
        f"the partition(s); e.g. reqCount/errCount of {spec.aggregate_table}.",
    )


def roll_up_window(
    context: dg.AssetExecutionContext,
    erp_db: ErpDatabase,
    spec: RollupSpec,
    days: Sequence[date],
    write_day: WriteDay,
    params: dict[str, Any],
    days_per_transaction: int,
    after: Callable[[psycopg.Connection], Any] | None = None,
) -> WindowRun:
    """Every day of the window, chunk by chunk (module docstring); the typed result of each day, then the
    time-zone findings and `after(conn)` (the rollup's own extra reads) on the same connection."""
    if not 1 <= days_per_transaction <= 366:
        raise ErpPipelinesError(
            f"days_per_transaction {days_per_transaction} is out of range.",
            where=f"run config of {spec.aggregate_table}",
            fix="Use 1 (the default) to 366 days per transaction.",
        )
    results: list[DayResult] = []
    with erp_connection(erp_db, f"rollup:{spec.aggregate_table}", {**spec.privileges, **ledger.OWN_PRIVILEGES}) as conn:
        ledger.ensure_own_schema(conn, erp_db.db_schema)
        bound: BoundSql | None = None
        for n, chunk in enumerate(chunks(days, days_per_transaction), start=1):
            try:
                with write_transaction(conn, spec.lock_key):
                    bound = bound or spec.bind(conn)  # the raw table's column types, read under the lock
                    chunk_results = roll_up_chunk(conn, spec, chunk, write_day, params, bound)
            except psycopg.errors.NumericValueOutOfRange as exc:
                raise _overflow_error(spec, chunk, exc) from None
            results.extend(chunk_results)
            if len(days) > len(chunk):
                context.log.info(
                    f"{spec.aggregate_table}: committed {chunk[0]}..{chunk[-1]} "
                    f"({len(results)}/{len(days)} days, chunk {n})"
                )
        findings = time_zone.read_findings(conn, spec)
        extra = None
        with autocommit(conn):  # reads of their own, one round trip each
            late = held_rows.late_rows_by_pruned_day(conn, spec)
            capture = capture_state(conn, erp_db.db_schema, spec.raw_table)
            if after is not None:
                extra = after(conn)
    return WindowRun(results, findings, extra, late, capture)


def roll_up_chunk(
    conn: psycopg.Connection,
    spec: RollupSpec,
    days: Sequence[date],
    write_day: WriteDay,
    params: dict[str, Any],
    bound: BoundSql | None = None,
) -> list[DayResult]:
    """The days of one chunk, inside its transaction (lock taken, snapshot open); `bound` is the spec's
    statements for this connection (bound here when not given)."""
    bound = bound or spec.bind(conn)
    recorded = ledger.read_ledger(conn, spec.aggregate_table, days)
    pruned = ledger.read_pruned(conn, spec.raw_table, days)
    results = []
    unledgered: list[date] = []  # aggregates without a ledger entry, with raw rows
    for day in days:
        day_start, day_end = spec.day_bounds(day)
        day_params = {**params, "day": day, "day_start": day_start, "day_end": day_end}
        if day in pruned:
            results.append(pruned_day_result(conn, spec, bound, day, day_start, day_end))
            continue
        if day not in recorded and conn.execute(bound.aggregate_exists_sql, day_params).fetchone() is not None:
            # rare: an aggregate without a ledger entry; decided before anything is written (module docstring)
            fp = ledger.fingerprint(conn, bound.fingerprint_sql, day_start, day_end)
            if fp.raw_rows == held_rows.null_key_rows(conn, spec, day_start, day_end):
                # no raw row it could hold (none, or only NULL keys, e.g. what retention left of a pruned day)
                results.append(DayResult(spec.aggregate_table, day, DayOutcome.KEPT_WITHOUT_LEDGER, fp.raw_rows))
                continue
            if not params.get(ADOPT):
                unledgered.append(day)
                continue
            ledger.record_pruned(conn, spec.raw_table, day, spec.aggregate_table, 0, fp.raw_hash)
            results.append(pruned_day_result(conn, spec, bound, day, day_start, day_end))
            continue
        # The write computes the day's fingerprint in its own read of the day (same per-row hash as
        # bound.fingerprint_sql); a day without raw rows is left untouched by it (see rollups/sql.py).
        written = write_day(conn, day, day_params, bound)
        fp = written.fingerprint
        base = {"rollup": spec.aggregate_table, "day": day, "raw_rows": fp.raw_rows}
        if fp.raw_rows == 0:
            removed = 0  # a day without a ledger entry reached here has no aggregate (checked above)
            if day in recorded:
                removed = conn.execute(bound.delete_day_sql, day_params).rowcount
                ledger.write_ledger(conn, spec.aggregate_table, day, fp)
            outcome = DayOutcome.REMOVED if removed else DayOutcome.EMPTY
            results.append(DayResult(**base, outcome=outcome, rows_deleted=removed))
            continue
        ledger.write_ledger(conn, spec.aggregate_table, day, fp, written.aggregate_hash)
        results.append(
            DayResult(
                **base,
                outcome=DayOutcome.ROLLED_UP,
                rows_inserted=written.inserted,
                rows_updated=written.updated,
                rows_deleted=written.deleted,
                mismatch=written.mismatch,
                figures=written.figures,
                extra=written.extra,
            )
        )
    if unledgered:
        raise unledgered_aggregate_error(spec, unledgered)
    ledger.clear_marks(conn, spec.raw_table, days)
    return results


def pruned_day_result(
    conn: psycopg.Connection, spec: RollupSpec, bound: BoundSql, day: date, day_start: datetime, day_end: datetime
) -> DayResult:
    """A pruned day (its aggregate is never touched): its raw rows, split into late rows an aggregate could
    hold and rows with a NULL key column (in no aggregate)."""
    fp = ledger.fingerprint(conn, bound.fingerprint_sql, day_start, day_end)
    null_keys = held_rows.null_key_rows(conn, spec, day_start, day_end) if fp.raw_rows else 0
    return DayResult(spec.aggregate_table, day, DayOutcome.PRUNED_KEPT, fp.raw_rows,
                     late_rows=fp.raw_rows - null_keys, null_key_rows=null_keys)


def unledgered_aggregate_error(spec: RollupSpec, days: Sequence[date]) -> ErpPipelinesError:
    """The run stops: aggregate rows without a ledger entry, and raw rows present now."""
    shown = ", ".join(str(d) for d in days[:10]) + (" ..." if len(days) > 10 else "")
    return ErpPipelinesError(
        f"{spec.aggregate_table} has rows for {len(days)} day(s) ({shown}) with no ledger entry, and raw "
        f"{spec.raw_table} rows are there now. Our own schema ({own_schema.own_schema_name()}) "
        "may have been dropped or restored without them, and those days may have been pruned: rebuilding them "
        "from the rows left would lose what the aggregate holds, so nothing was written.",
        where=f"table {spec.aggregate_table}, rollup ledger of schema {own_schema.own_schema_name()}",
        fix="Re-materialize these partitions with run config `adopt_existing_aggregates: true`: it records the "
        "days as pruned WITHOUT changing their aggregate rows; their raw rows then stay raw and are reported "
        "as late rows (docs/own_schema.md, 'Losing our schema'). Or restore our schema from a backup.",
    )


# -- checks every rollup shares ---------------------------------------------------------------------------

def late_rows_result(
    spec: RollupSpec, results: Sequence[DayResult], pruned_late: Mapping[date, int] | None = None
) -> dg.AssetCheckResult:
    """WARN: raw rows that arrived for days retention already pruned; kept raw, not in the aggregate. Looks at
    the window's days and at `pruned_late` (every pruned day of the raw table, WindowRun)."""
    late = {str(r.day): r.late_rows for r in results if r.late_rows}
    late.update({str(day): n for day, n in (pruned_late or {}).items()})
    return dg.AssetCheckResult(
        check_name=LATE_ROWS_CHECK,
        asset_key=spec.asset_key,
        passed=not late,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            "No raw rows for a pruned day."
            if not late
            else f"{sum(late.values())} raw row(s) of {spec.raw_table} arrived after their day was pruned "
            f"({', '.join(sorted(late)[:10])}). The day's aggregate is kept as it was (it holds the pruned rows) "
            "and these rows are kept raw, never deleted and not in the aggregate."
        ),
        metadata={"late_rows_by_day": dg.MetadataValue.json(late)},
    )


LATE_ROWS_CHECK = "no_late_rows_for_pruned_days"
CAPTURE_CHECK = "capture_triggers_enabled"
# The checks every rollup has, whatever its spec (shared_check_specs; machine.py judges them)
SHARED_CHECK_NAMES = (time_zone.TIME_ZONE_CHECK, LATE_ROWS_CHECK, CAPTURE_CHECK)
CAPTURE_CHECK_DESCRIPTION = (
    "Warns when a capture trigger on the raw table is disabled (ALTER TABLE ... DISABLE TRIGGER) or was dropped "
    "while change capture is installed: changed days are then not marked; materialize pipeline_state to re-enable."
)


def capture_result(spec: RollupSpec, state: CaptureState | None) -> dg.AssetCheckResult:
    """WARN: the raw table's capture triggers do not all fire (capture/health.py says what counts as off)."""
    if state is None or not state.installed:
        passed, text = True, (f"Change capture is not installed on {spec.raw_table} (opted out, or pipeline_state "
                              "has not run): changed days are found by their fingerprints alone.")
    elif state.firing:
        passed, text = True, f"Every capture trigger on {spec.raw_table} is in place and enabled."
    else:
        off = [f"{n} (disabled)" for n in state.disabled] + [f"{n} (missing)" for n in state.missing]
        passed, text = False, (
            f"Change capture on {spec.raw_table} is partly off: {', '.join(off)}. The app's writes meanwhile are "
            "not marked, so the late-data sensor does not refresh their days (retention's fingerprint gate still "
            "holds their raw rows). Materialize pipeline_state (schema_sync_job, as the sync role) to enable or "
            "re-create them; to stop change capture for good, set change_capture: false there instead."
        )
    return dg.AssetCheckResult(
        check_name=CAPTURE_CHECK,
        asset_key=spec.asset_key,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=text,
        metadata={
            "triggers_disabled": dg.MetadataValue.json(list(state.disabled) if state else []),
            "triggers_missing": dg.MetadataValue.json(list(state.missing) if state else []),
        },
    )
# The one run-metadata key every rollup emits for the raw rows its window read (runner.py's summary).
RAW_ROWS_READ = "raw_rows_read"


def window_metadata(results: Sequence[DayResult], days: int, days_per_transaction: int) -> dict[str, Any]:
    """The run-level metadata every rollup reports about its window: days judged, rolled up, kept, per outcome."""
    return {
        RAW_ROWS_READ: dg.MetadataValue.int(sum(r.raw_rows for r in results)),
        "days_in_window": dg.MetadataValue.int(days),
        "days_with_raw_rows": dg.MetadataValue.int(sum(1 for r in results if r.outcome == DayOutcome.ROLLED_UP)),
        "days_kept_without_raw_rows": dg.MetadataValue.int(sum(1 for r in results if r.outcome in KEPT_OUTCOMES)),
        "day_outcomes": dg.MetadataValue.json(outcome_counts(results)),
        "days_per_transaction": dg.MetadataValue.int(days_per_transaction),
    }


def shared_check_specs(asset_key: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            time_zone.TIME_ZONE_CHECK,
            asset=asset_key,
            description="Fails when the ERP database's or a role's TimeZone is not UTC, or raw rows lie in the "
            "future of UTC now: a writer storing local time into `timestamp without time zone`.",
        ),
        dg.AssetCheckSpec(
            LATE_ROWS_CHECK,
            asset=asset_key,
            description="Warns about raw rows that arrived for a day retention already pruned (kept raw).",
        ),
        dg.AssetCheckSpec(CAPTURE_CHECK, asset=asset_key, description=CAPTURE_CHECK_DESCRIPTION),
    ]


def rollup_asset(spec: RollupSpec, check_specs: Sequence[dg.AssetCheckSpec]) -> Callable[..., dg.AssetsDefinition]:
    """The decorator of every rollup asset: daily UTC partitions, single-run backfills, the ERP pool, the
    retry policy, the freshness policy, and the rollup's own checks plus the ones every rollup has."""
    return dg.asset(
        key=spec.asset_key,
        deps=[spec.raw_spec, "erp_schema"],
        partitions_def=DAILY_PARTITIONS,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"postgres"},
        pool=ERP_DB_POOL,
        group_name=GROUP,
        retry_policy=RETRY_POLICY,
        description=spec.description,
        freshness_policy=checks.ROLLUP_FRESHNESS_POLICY,
        check_specs=[*check_specs, *shared_check_specs(spec.asset_key)],
    )


def log_outcomes(context: dg.AssetExecutionContext, spec: RollupSpec, results: Sequence[DayResult]) -> None:
    for outcome, what in (
        (DayOutcome.PRUNED_KEPT, "were pruned by retention and keep their aggregate unchanged"),
        (DayOutcome.KEPT_WITHOUT_LEDGER, "have an aggregate but no ledger entry and no raw row it could hold: kept"),
        (DayOutcome.REMOVED, "lost all their raw rows (deleted by the ERP): aggregate rows removed"),
    ):
        days = [str(r.day) for r in results if r.outcome == outcome]
        if days:
            context.log.info(
                f"{spec.aggregate_table}: {len(days)} day(s) {what}: " + ", ".join(days[:20])
                + (" ..." if len(days) > 20 else "")
            )


def outcome_counts(results: Sequence[DayResult]) -> dict[str, int]:
    return {o.value: sum(1 for r in results if r.outcome == o) for o in DayOutcome}


KEPT_OUTCOMES = (DayOutcome.PRUNED_KEPT, DayOutcome.KEPT_WITHOUT_LEDGER)
KEPT_REASON = {
    DayOutcome.PRUNED_KEPT: "pruned by retention: the aggregate holds the pruned rows and is never rebuilt",
    DayOutcome.KEPT_WITHOUT_LEDGER: "no ledger entry and no raw row it could hold: kept as it is",
}


def day_figures(
    result: DayResult, raw_rows_label: str, zero_when_not_read: Sequence[str] = ()
) -> DayFigures:
    """The typed per-day result as `daily_report.DayFigures` (the per-partition metadata). Counts named in
    `zero_when_not_read` are 0 on a day that was not rolled up (no raw rows read for them)."""
    return DayFigures(
        day=result.day,
        rows_written=result.rows_written,
        raw_rows_read=result.raw_rows,
        figures={
            **dict.fromkeys(zero_when_not_read, 0),
            **result.figures,
            raw_rows_label: result.raw_rows,
            "late_rows": result.late_rows,
        },
        kept=KEPT_REASON.get(result.outcome),
    )


def reconciliation_day(result: DayResult) -> DayCheck:
    """The day's reconciliation verdict (checks.reconciliation_day) from its typed result."""
    return checks.reconciliation_day(result.day, result.mismatch, result.raw_rows, KEPT_REASON.get(result.outcome))
