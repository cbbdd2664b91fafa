"""The one asset and check builder every rollup runs: the two original rollups and every declared instance.

Why a module: a rollup's asset step is always the same walk (the window's days through `steps.roll_up_window`,
then the per-partition report of `daily_report.report`); what differs between rollups is data, carried by
the spec (`RollupSpec.body`, a `RollupBody`): the run config class, the per-day write function, the rollup's
own checks and how each judges a day, the run metadata keys only it reports, the extra reads after the
window. `build_asset(spec)` turns a spec into its asset; nothing else builds a rollup asset.

What every rollup gets from here, whatever its body: daily UTC partitions and single-run backfills
(`steps.rollup_asset`), the blocking reconciliation check per day (`spec.reconciliation_check`), the checks
every rollup has (raw times in UTC, late rows for pruned days, capture triggers enabled), the run metadata `dagster/row_count`,
`rows_written`, `rows_inserted`, `rows_updated` and the window's (`steps.window_metadata`, with
`raw_rows_read`), each day's own figures with `dagster/table_name`, and `step_errors` (user errors).
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import dagster as dg
import psycopg

from erp_pipelines.dbwork import step_errors
from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.resources import ErpDatabase
from erp_pipelines.rollups import daily_report, steps, time_zone
from erp_pipelines.rollups.daily_report import DayCheck
from erp_pipelines.rollups.spec import RollupSpec
from erp_pipelines.rollups.steps import DayResult, RollupStepConfig, WindowRun

# The window's bounds as the statements counting its aggregate rows take them: naive UTC midnights
# (window_start, window_end) and dates (first_day, end_day: the day after the last).
Window = dict[str, Any]


@dataclass(frozen=True)
class CheckDecl:
    """One check of a rollup's own (besides the ones every rollup has): its spec, as data."""

    name: str
    description: str
    blocking: bool = False
    additional_deps: tuple[str, ...] = ()
    per_day: bool = True  # judged per UTC day (a partitioned spec), else once per run

    def spec(self, asset_key: str) -> dg.AssetCheckSpec:
        if self.per_day:
            return daily_report.daily_check_spec(
                self.name, asset_key, self.description, blocking=self.blocking,
                additional_deps=list(self.additional_deps),
            )
        return dg.AssetCheckSpec(self.name, asset=asset_key, description=self.description,
                                 blocking=self.blocking, additional_deps=list(self.additional_deps))


@dataclass(frozen=True)
class WindowReading:
    """What the machine read after the window (on the run's connection, autocommit): the window's aggregate
    rows and the rollup's own extra reading (`RollupBody.read_after`)."""

    row_count: int
    extra: Any = None


@dataclass(frozen=True)
class RollupBody:
    """What differs between rollups' asset steps, as data the machine runs (module docstring)."""

    config_type: type[RollupStepConfig]
    write_day: steps.WriteDay  # replace one day's aggregate and report it (steps.DayWrite)
    # the rollup's own checks, the blocking reconciliation (spec.reconciliation_check) among them
    checks: tuple[CheckDecl, ...]
    # the aggregate rows of the window (dagster/row_count): (connection, Window) -> count
    window_rows: Callable[[psycopg.Connection, Window], int]
    # per-day verdict of each own per-day check but the reconciliation: (day's result, WindowReading.extra)
    day_checks: Mapping[str, Callable[[DayResult, Any], DayCheck]] = field(default_factory=dict)
    # results of the own run-level checks: (the window's run, WindowReading.extra)
    run_checks: Callable[[WindowRun, Any], Sequence[dg.AssetCheckResult]] = lambda run, extra: ()
    # statement parameters from the run config (besides now, recompute_check, adopt_existing_aggregates)
    params: Callable[[Any], Mapping[str, Any]] = lambda config: {}
    # an extra reading after the window on the run's connection (autocommit), handed to the hooks
    read_after: Callable[[psycopg.Connection, Window], Any] | None = None
    # the run metadata keys only this rollup reports: (day results, WindowReading.extra)
    run_metadata: Callable[[Sequence[DayResult], Any], Mapping[str, dg.MetadataValue]] = (
        lambda results, extra: {}
    )
    # warnings for the run's log: (day results) -> lines
    notes: Callable[[Sequence[DayResult]], Sequence[str]] = lambda results: ()
    raw_rows_label: str = steps.RAW_ROWS_READ  # the day's figure naming its raw rows (e.g. events_read)
    zero_when_not_read: tuple[str, ...] = ()  # day figures that are 0 on a day not rolled up
    reports_deleted: bool = True  # the run metadata has rows_deleted
    raw_rows_noun: str = "raw rows"  # in the run's log line

    def check_specs(self, asset_key: str) -> list[dg.AssetCheckSpec]:
        return [c.spec(asset_key) for c in self.checks]


def window_of(context: dg.AssetExecutionContext) -> tuple[list, Window]:
    days, window_start, window_end = steps.window_days(context)
    return days, {"window_start": window_start, "window_end": window_end,
                  "first_day": days[0], "end_day": days[-1] + timedelta(days=1)}


def _aggregate_table_name(spec: RollupSpec, erp_db: ErpDatabase) -> dg.MetadataValue:
    if spec.extra.get("aggregate_schema") == "own":
        from erp_pipelines.own_schema import own_schema_name

        return dg.MetadataValue.text(f"{own_schema_name()}.{spec.aggregate_table}")
    return steps.table_name_metadata(erp_db, spec.aggregate_table)


def _check_body(spec: RollupSpec, body: RollupBody) -> None:
    """The spec's check names are its body's checks plus the shared ones; every own per-day check but the
    reconciliation has a verdict (a wrong body is a bug, caught when the definitions load)."""
    names = {c.name for c in body.checks}
    shared = set(steps.SHARED_CHECK_NAMES)
    judged = {c.name for c in body.checks if c.per_day} - {spec.reconciliation_check}
    if (set(spec.check_names) != names | shared or spec.reconciliation_check not in names
            or judged != set(body.day_checks)):
        raise ErpPipelinesError(
            f"The rollup {spec.aggregate_table} names the checks {sorted(spec.check_names)}, its body declares "
            f"{sorted(names)} (per-day verdicts for {sorted(body.day_checks)}).",
            where=f"RollupSpec of {spec.aggregate_table} (erp_pipelines/rollups/)",
            fix="Declare every check of the spec once in its body, with a per-day verdict for each per-day check.",
        )


def build_asset(spec: RollupSpec) -> dg.AssetsDefinition:
    """The asset of a rollup, from its spec and the spec's body (the one builder of every rollup asset)."""
    body: RollupBody = spec.body
    _check_body(spec, body)
    config_type = body.config_type

    @steps.rollup_asset(spec, body.check_specs(spec.asset_key))
    def _rollup(
        context: dg.AssetExecutionContext, config: config_type, erp_db: ErpDatabase  # type: ignore[valid-type]
    ) -> Iterator[daily_report.ReportEvent]:
        with step_errors():
            yield from run_rollup(context, config, erp_db, spec)

    return _rollup


def run_rollup(
    context: dg.AssetExecutionContext, config: RollupStepConfig, erp_db: ErpDatabase, spec: RollupSpec
) -> Iterator[daily_report.ReportEvent]:
    """One run of a rollup over its window: write the days, then report them (module docstring)."""
    body: RollupBody = spec.body
    days, window = window_of(context)

    def after(conn: psycopg.Connection) -> WindowReading:
        extra = body.read_after(conn, window) if body.read_after is not None else None
        return WindowReading(int(body.window_rows(conn, window)), extra)

    run = steps.roll_up_window(
        context, erp_db, spec, days, body.write_day,
        {"now": steps.now_naive(), "recompute_check": config.recompute_check,
         steps.ADOPT: config.adopt_existing_aggregates, **body.params(config)},
        config.days_per_transaction, after=after,
    )
    results, reading = run.results, run.extra
    steps.log_outcomes(context, spec, results)
    for note in body.notes(results):
        context.log.warning(note)
    totals = {k: sum(getattr(r, f"rows_{k}") for r in results) for k in ("inserted", "updated", "deleted")}
    context.log.info(
        f"{spec.aggregate_table} {days[0]}..{days[-1]}: {sum(r.raw_rows for r in results)} {body.raw_rows_noun} "
        f"read, {totals['inserted']} rows inserted, {totals['updated']} updated, {totals['deleted']} deleted."
    )
    run_metadata: dict[str, dg.MetadataValue] = {
        "dagster/row_count": dg.MetadataValue.int(reading.row_count),
        "rows_written": dg.MetadataValue.int(sum(r.rows_written for r in results)),
        "rows_inserted": dg.MetadataValue.int(totals["inserted"]),
        "rows_updated": dg.MetadataValue.int(totals["updated"]),
    }
    if body.reports_deleted:
        run_metadata["rows_deleted"] = dg.MetadataValue.int(totals["deleted"])
    if body.raw_rows_label != steps.RAW_ROWS_READ:
        run_metadata[body.raw_rows_label] = dg.MetadataValue.int(sum(r.raw_rows for r in results))
    run_metadata.update(body.run_metadata(results, reading.extra))
    run_metadata.update(steps.window_metadata(results, len(days), config.days_per_transaction))
    yield from daily_report.report(
        context,
        spec.asset_key,
        run_metadata=run_metadata,
        days=[steps.day_figures(r, body.raw_rows_label, body.zero_when_not_read) for r in results],
        checks={
            spec.reconciliation_check: [steps.reconciliation_day(r) for r in results],
            **{name: [verdict(r, reading.extra) for r in results] for name, verdict in body.day_checks.items()},
        },
        day_extra={"dagster/table_name": _aggregate_table_name(spec, erp_db)},
        run_checks=[
            *body.run_checks(run, reading.extra),
            time_zone.time_zone_result(spec, run.findings),
            steps.late_rows_result(spec, results, run.late_rows_by_pruned_day),
            steps.capture_result(spec, run.capture),
        ],
    )
