"""Each rollup day's own numbers and check results, as events Dagster keeps per partition.

Why this module: an operator looks at one day (the partitions view) or at the daily trend (the asset's
plots), so every day of `system_metric_daily` and `client_daily_usage` must carry that day's figures and
that day's check results, whether it was rolled up by the nightly one-day run or by a single-run backfill.

How, and the Dagster 1.13.27 limits it works around:

- A one-day run (the run has a `dagster/partition` tag) puts the day's figures on its materialization
  (`MaterializeResult.metadata`) and its check results in `MaterializeResult.check_results`; Dagster
  itself records each result for the run's partition because the check specs declare the daily
  `partitions_def` (`AssetCheckResult.to_asset_check_evaluation` sets `partition` only when the step has
  a single partition key and the spec has a `partitions_def`).
- A single-run backfill (a partition RANGE) cannot do that: the step's one Output becomes one
  materialization per partition, all with the same metadata (dagster-io/dagster#18123), and an
  `AssetCheckResult` has no `partition` argument (its evaluation gets `partition=None` in a range run).
  So the run's own materialization carries only run-level numbers (constant size, never a per-day list:
  N partitions each copying an N-day list would grow O(N^2)), and AFTER it the step yields, per day:
  `dg.AssetMaterialization(partition=day, metadata=<the day's figures>)` (the newest materialization of
  the partition, which is what the partitions view and the per-partition plots read; observations would
  not do: the plot takes the latest MATERIALIZATION of a partition and falls back to observations only
  when there is none), then `dg.AssetCheckEvaluation(partition=day, target_materialization_data=<that
  materialization>)` per check (the check-partition status counts a result only while it targets the
  partition's latest materialization), then one `dg.Output(None)` per check output (what Dagster yields
  for an `AssetCheckResult`; without it the step fails with "did not return an output for non-optional
  output"). A failed blocking check of ERROR severity still fails the step, as before.
- Dagster's checks list shows a per-day check's worst day, its detail page the newest execution (one day):
  so every run also records one evaluation without a partition, the check's standing verdict over every
  judged day (`standing_evaluation`, the comment above it says why and how), which both then show.

Only Dagster's public API is used. A check evaluation's target (`AssetCheckEvaluation`'s
`target_materialization_data`: storage id, run id, timestamp of the materialization it judges) is of a class
Dagster does not export; `materialization_target` builds it with the public `dg.deserialize_value` from its
serialized form, which every Dagster instance stores in its event log (so Dagster keeps that form readable),
rather than importing it from `dagster._core`.

Everything here is computed from typed values (`DayFigures`, `DayCheck`), so the pure parts are unit
tested without a database or a Dagster instance; `report` is the one function an asset body calls.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import dagster as dg

from erp_pipelines.partitions import DAILY_PARTITIONS

Number = int | float
# `AssetCheckEvaluation.target_materialization_data`: a pointer to the materialization a check result judges
# (a Dagster record without a public import path: built by `materialization_target`).
MaterializationTarget = Any
TARGET_CLASS = "AssetCheckEvaluationTargetMaterializationData"  # its serialized class name (event log)


def materialization_target(storage_id: int, run_id: str, timestamp: float) -> MaterializationTarget:
    """The target of a check evaluation: the materialization (event log storage id, run, time) it judges."""
    target = dg.deserialize_value(
        json.dumps({"__class__": TARGET_CLASS, "storage_id": int(storage_id), "run_id": str(run_id),
                    "timestamp": float(timestamp)})
    )
    if (target.storage_id, target.run_id) != (int(storage_id), str(run_id)):  # pragma: no cover - Dagster changed
        raise TypeError(f"Dagster no longer reads {TARGET_CLASS} as (storage_id, run_id, timestamp)")
    return target

# One day of client_daily_usage, summed over its (client, module) rows (rollups/sql.py USAGE_DAY_READBACK).
# `active_users_summed` adds the rows' distinct-user counts, so a user active in two modules (or for two
# clients) counts twice: it is the sum the table can give without re-reading the raw events.
USAGE_FIGURE_NAMES = (
    "view_count", "create_count", "edit_count", "delete_count", "active_users_summed", "clients", "modules",
)
METRIC_FIGURE_NAMES = ("avgLatencyMs", "avgErrorRatePct", "reqCount", "errCount")


@dataclass(frozen=True)
class DayFigures:
    """What one day of a rollup is, as numbers an operator plots.

    `figures` are the business numbers (None: not measured that day, left out of the metadata);
    `fingerprint` is (raw rows, highest raw id) as the late-data sensor compares them; `kept` says why
    the day's aggregate was left as it was (raw rows pruned or incomplete), None when it was rewritten.
    """

    day: date
    rows_written: int
    raw_rows_read: int
    figures: Mapping[str, Number | None] = field(default_factory=dict)
    row_count: int | None = None
    fingerprint: tuple[int, int] | None = None
    kept: str | None = None


@dataclass(frozen=True)
class DayCheck:
    """One check's verdict on one day."""

    day: date
    passed: bool
    description: str
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR
    metadata: Mapping[str, Any] = field(default_factory=dict)


def _number(value: Number) -> dg.MetadataValue:
    if isinstance(value, bool):
        return dg.MetadataValue.int(int(value))
    if isinstance(value, int):
        return dg.MetadataValue.int(value)
    return dg.MetadataValue.float(float(value))


def day_metadata(figures: DayFigures) -> dict[str, dg.MetadataValue]:
    """The day's own metadata: numeric figures (plotted by the UI), its row count and raw fingerprint."""
    metadata: dict[str, dg.MetadataValue] = {
        "rows_written": dg.MetadataValue.int(figures.rows_written),
        "raw_rows_read": dg.MetadataValue.int(figures.raw_rows_read),
    }
    for name, value in figures.figures.items():
        if value is not None:
            metadata[name] = _number(value)
    if figures.row_count is not None:
        metadata["dagster/row_count"] = dg.MetadataValue.int(figures.row_count)
    if figures.fingerprint is not None:
        rows, max_id = figures.fingerprint
        # Same shape as a one-day run's materialization: {day: {rows, max_id}} (read by late_data_sensor).
        metadata["raw_fingerprints"] = dg.MetadataValue.json(
            {str(figures.day): {"rows": int(rows), "max_id": int(max_id)}}
        )
    if figures.kept is not None:
        metadata["kept_unchanged_because"] = dg.MetadataValue.text(figures.kept)
    return metadata


def day_materializations(
    asset_key: str | dg.AssetKey, days: Sequence[DayFigures], extra: Mapping[str, dg.MetadataValue] | None = None
) -> list[dg.AssetMaterialization]:
    """One materialization per day, each with only that day's metadata (plus `extra`, e.g. the table name)."""
    key = dg.AssetKey.from_coercible(asset_key)
    return [
        dg.AssetMaterialization(
            asset_key=key,
            partition=str(f.day),
            description=f"{key.to_user_string()} {f.day}: that day's own figures (one day of a backfill run).",
            metadata={**(extra or {}), **day_metadata(f)},
        )
        for f in days
    ]


def daily_check_spec(
    name: str,
    asset: str,
    description: str,
    *,
    blocking: bool = False,
    additional_deps: Sequence[str] | None = None,
    partitions_def: dg.PartitionsDefinition = DAILY_PARTITIONS,
) -> dg.AssetCheckSpec:
    """An AssetCheckSpec judged per UTC day: its results are recorded per partition (a preview feature in
    Dagster 1.13, whose PreviewWarning is silenced here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(
            name,
            asset=asset,
            description=description,
            blocking=blocking,
            additional_deps=list(additional_deps or []),
            partitions_def=partitions_def,
        )


def day_check_results(
    check_name: str, asset_key: str | dg.AssetKey, outcomes: Sequence[DayCheck]
) -> list[dg.AssetCheckResult]:
    """Check results of a ONE-partition run: Dagster records each for the run's partition itself."""
    return [
        dg.AssetCheckResult(
            check_name=check_name,
            asset_key=asset_key,
            passed=o.passed,
            severity=o.severity,
            description=o.description,
            metadata=dict(o.metadata),
        )
        for o in outcomes
    ]


def day_check_evaluations(
    check_name: str,
    asset_key: str | dg.AssetKey,
    outcomes: Sequence[DayCheck],
    *,
    blocking: bool,
    targets: Mapping[date, MaterializationTarget] | None = None,
) -> list[dg.AssetCheckEvaluation]:
    """Check evaluations of a partition-RANGE run, one per day with its `partition` (AssetCheckResult has
    none). `targets` are the days' latest materializations: a result counts in the partition's check
    status only while it targets the partition's latest materialization."""
    key = dg.AssetKey.from_coercible(asset_key)
    return [
        dg.AssetCheckEvaluation(
            asset_key=key,
            check_name=check_name,
            passed=o.passed,
            metadata=dict(o.metadata),
            target_materialization_data=(targets or {}).get(o.day),
            severity=o.severity,
            description=o.description,
            blocking=blocking,
            partition=str(o.day),
        )
        for o in outcomes
    ]


def latest_materializations(
    instance: dg.DagsterInstance, asset_key: str | dg.AssetKey, days: Sequence[date]
) -> dict[date, MaterializationTarget]:
    """Each day's latest materialization (one query), as the target of that day's check evaluations."""
    if not days:
        return {}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey.from_coercible(asset_key), asset_partitions=[str(d) for d in days]
        ),
        limit=len(days),
    ).records
    targets: dict[date, MaterializationTarget] = {}
    for record in records:  # newest first: keep the first seen per partition
        if record.partition_key is None:
            continue
        day = date.fromisoformat(record.partition_key)
        targets.setdefault(
            day,
            materialization_target(record.storage_id, record.run_id, record.timestamp),
        )
    return targets


def check_outcome_summary(outcomes: Sequence[DayCheck]) -> dict[str, dg.MetadataValue]:
    """Run-level counts of a check over the window (constant size, for the run's own materialization)."""
    failed = [o for o in outcomes if not o.passed]
    return {
        "days_judged": dg.MetadataValue.int(len(outcomes)),
        "days_failed": dg.MetadataValue.int(len(failed)),
    }


# -- what stands: the one verdict a per-day check's latest execution carries ------------------------------
#
# Dagster 1.13.27's checks list shows a partitioned check's WORST current partition status; its detail page
# ("Latest execution", `executionForLatestMaterialization`) shows the check's newest execution record, which
# after a range run is the last partition the run planned and after a nightly run is yesterday. So a failed
# incident day and a healthy newest day read "Failed" in the list and "Passed" in the detail. Every run that
# judges a per-day check therefore also records one evaluation WITHOUT a partition (newest record: inserted
# after the run's planned per-day rows): it fails while any day's latest verdict fails (this run's days as
# just judged, every other day as last judged), names those days in its metadata, and carries the worst
# severity, which is exactly what the list reduces the partitions to. Per-day statuses stay as they are
# (the partitions view ignores an evaluation without a partition); it never blocks (a standing failure of an
# earlier day must not fail tonight's run: the day's own evaluation blocked when it was judged).
STANDING_FAILED_DAYS = "standing_failed_days"  # metadata key that marks the standing evaluation
STANDING_HISTORY = 2000  # evaluations read per check (newest first): a year of days, several times over


def is_standing_evaluation(evaluation: dg.AssetCheckEvaluation) -> bool:
    """The run's standing verdict of a per-day check (not a day's own result)."""
    return evaluation.partition is None and STANDING_FAILED_DAYS in evaluation.metadata


def latest_evaluations(
    instance: dg.DagsterInstance, key: dg.AssetCheckKey
) -> dict[str | None, dg.AssetCheckEvaluation]:
    """Per partition (None: an unpartitioned check), the instance's latest evaluation of the check; planned
    or still running executions and the standing verdicts are left out."""
    latest: dict[str | None, dg.AssetCheckEvaluation] = {}
    for record in instance.event_log_storage.get_asset_check_execution_history(key, limit=STANDING_HISTORY):
        event = record.event.dagster_event if record.event else None  # newest first
        if event is None or event.event_type_value != "ASSET_CHECK_EVALUATION":
            continue
        data = event.asset_check_evaluation_data
        if is_standing_evaluation(data):
            continue
        latest.setdefault(data.partition or record.partition, data)
    return latest


@dataclass(frozen=True)
class StandingFailure:
    """A day whose latest verdict of a per-day check failed."""

    day: str
    severity: dg.AssetCheckSeverity
    description: str


def standing_failures_of(
    earlier: Mapping[str | None, dg.AssetCheckEvaluation], outcomes: Sequence[DayCheck]
) -> list[StandingFailure]:
    """Days that fail now: this run's failed days, and every other day whose latest verdict failed."""
    judged = {str(o.day) for o in outcomes}
    failed = {
        day: StandingFailure(day, ev.severity, ev.description or "")
        for day, ev in earlier.items()
        if day is not None and day not in judged and not ev.passed
    }
    failed.update({str(o.day): StandingFailure(str(o.day), o.severity, o.description) for o in outcomes if not o.passed})
    return [failed[day] for day in sorted(failed)]


def standing_evaluation(
    check_name: str, asset_key: str | dg.AssetKey, failures: Sequence[StandingFailure], judged_now: int
) -> dg.AssetCheckEvaluation:
    """The check's verdict over every day it has judged (module comment above): the newest execution."""
    metadata = {
        STANDING_FAILED_DAYS: dg.MetadataValue.json({f.day: f.severity.value for f in failures}),
        "days_failing": dg.MetadataValue.int(len(failures)),
        "days_judged_by_this_run": dg.MetadataValue.int(judged_now),
    }
    if not failures:
        description = (f"No day fails: the {judged_now} day(s) judged by this run passed, and no earlier day's "
                       "latest verdict failed.")
    elif len(failures) == 1:
        description = f"1 day fails: {failures[0].description}"
    else:
        description = (f"{len(failures)} days fail ({failures[0].day}..{failures[-1].day}: "
                       f"{', '.join(f.day for f in failures[:10])}{' ...' if len(failures) > 10 else ''}); "
                       f"first: {failures[0].description}")
    worst = (dg.AssetCheckSeverity.ERROR
             if any(f.severity == dg.AssetCheckSeverity.ERROR for f in failures) or not failures
             else dg.AssetCheckSeverity.WARN)
    return dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey.from_coercible(asset_key),
        check_name=check_name,
        passed=not failures,
        metadata=metadata,
        severity=worst,
        description="Standing verdict over every judged day (each day's own result: Partitions). " + description,
        blocking=False,
        partition=None,
    )


def standing_evaluations(
    context: dg.AssetExecutionContext, key: dg.AssetKey, checks: Mapping[str, Sequence[DayCheck]]
) -> list[dg.AssetCheckEvaluation]:
    """One standing evaluation per per-day check this run judged; earlier days outside the check's
    partitions (e.g. before a later ERP_ROLLUP_START_DATE) are left out, as the checks list leaves them out."""
    out = []
    for name, outcomes in checks.items():
        check_key = dg.AssetCheckKey(key, name)
        partitions_def = context.assets_def.get_spec_for_check_key(check_key).partitions_def
        earlier = {
            day: ev for day, ev in latest_evaluations(context.instance, check_key).items()
            if day is not None and (partitions_def is None or partitions_def.has_partition_key(day))
        }
        out.append(standing_evaluation(name, key, standing_failures_of(earlier, outcomes), len(outcomes)))
    return out


ReportEvent = dg.MaterializeResult | dg.AssetMaterialization | dg.AssetCheckEvaluation | dg.Output


def report(
    context: dg.AssetExecutionContext,
    asset_key: str,
    run_metadata: Mapping[str, dg.MetadataValue],
    days: Sequence[DayFigures],
    checks: Mapping[str, Sequence[DayCheck]],
    day_extra: Mapping[str, dg.MetadataValue] | None = None,
    run_checks: Sequence[dg.AssetCheckResult] = (),
) -> Iterator[ReportEvent]:
    """What a rollup step yields for its window (module docstring): `yield from report(...)`.

    `checks` maps each PER-DAY check (spec from `daily_check_spec`) to its outcomes, one per day;
    `run_checks` are results of checks without a `partitions_def` (judged once per run), passed through
    as they are. `run_metadata` must not hold per-day lists (a range run copies it onto every partition);
    `day_extra` is added to each day's own metadata (e.g. `dagster/table_name`). Only selected per-day
    checks are reported. Each per-day check also gets its standing evaluation (`standing_evaluations`).
    """
    key = dg.AssetKey(asset_key)
    selected = {k.name for k in context.selected_asset_check_keys if k.asset_key == key}
    checks = {name: outcomes for name, outcomes in checks.items() if name in selected}
    # first: a test or a summary keying evaluations by check name keeps the days' own (the last ones)
    yield from standing_evaluations(context, key, checks)
    if context.has_partition_key:
        (figures,) = days  # a one-partition run covers exactly its day
        yield dg.MaterializeResult(
            metadata={**run_metadata, **(day_extra or {}), **day_metadata(figures)},
            check_results=[
                *(r for name, outcomes in checks.items() for r in day_check_results(name, key, outcomes)),
                *run_checks,
            ],
        )
        return
    yield dg.MaterializeResult(metadata=dict(run_metadata), check_results=list(run_checks))
    yield from day_materializations(key, days, day_extra)
    targets = latest_materializations(context.instance, key, [f.day for f in days])
    output_names = {spec.key: name for name, spec in context.assets_def.check_specs_by_output_name.items()}
    for name, outcomes in checks.items():
        check_key = dg.AssetCheckKey(key, name)
        blocking = context.assets_def.get_spec_for_check_key(check_key).blocking
        yield from day_check_evaluations(name, key, outcomes, blocking=blocking, targets=targets)
        yield dg.Output(None, output_name=output_names[check_key])
