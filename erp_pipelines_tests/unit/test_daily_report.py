"""Each rollup day's own numbers and check verdicts become the right Dagster events (no database)."""

from __future__ import annotations

from datetime import date

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from erp_pipelines.partitions import DAILY_PARTITIONS
from erp_pipelines.rollups import checks, daily_report
from erp_pipelines.rollups.daily_report import (
    DayCheck,
    DayFigures,
    check_outcome_summary,
    daily_check_spec,
    day_check_evaluations,
    day_check_results,
    day_materializations,
    day_metadata,
    is_standing_evaluation,
    standing_evaluation,
    standing_failures_of,
)

NORMAL = date(2026, 11, 20)
INCIDENT = date(2026, 11, 21)
THRESHOLDS = {"latency": {"warning": 500, "critical": 1000}, "errorRate": {"warning": 1, "critical": 5}}


def metric_day(day: date, latency: int, error_rate: float | None) -> DayFigures:
    return DayFigures(
        day=day,
        rows_written=1,
        raw_rows_read=1440,
        figures={"avgLatencyMs": latency, "avgErrorRatePct": error_rate, "reqCount": 90_000, "errCount": 45},
        row_count=1,
        fingerprint=(1440, 99),
    )


def test_a_day_carries_its_own_numbers_as_plottable_metadata():
    metadata = day_metadata(metric_day(INCIDENT, 1840, 7.25))
    assert metadata["avgLatencyMs"] == dg.MetadataValue.int(1840)
    assert metadata["avgErrorRatePct"] == dg.MetadataValue.float(7.25)
    assert metadata["reqCount"] == dg.MetadataValue.int(90_000)
    assert metadata["rows_written"] == dg.MetadataValue.int(1)
    assert metadata["raw_rows_read"] == dg.MetadataValue.int(1440)
    assert metadata["dagster/row_count"] == dg.MetadataValue.int(1)
    # the late-data sensor's fingerprint, in the shape a one-day run has always recorded
    assert metadata["raw_fingerprints"].value == {"2026-11-21": {"rows": 1440, "max_id": 99}}


def test_an_unmeasured_figure_is_left_out_rather_than_plotted_as_zero():
    metadata = day_metadata(metric_day(NORMAL, 120, None))
    assert "avgErrorRatePct" not in metadata
    assert "kept_unchanged_because" not in metadata


def test_a_kept_day_says_why_its_aggregate_was_not_rewritten():
    kept = DayFigures(NORMAL, rows_written=0, raw_rows_read=0, kept="no samples left (pruned)")
    assert day_metadata(kept)["kept_unchanged_because"] == dg.MetadataValue.text("no samples left (pruned)")


def test_a_backfill_gives_every_partition_its_own_materialization_and_size_stays_linear():
    days = [metric_day(NORMAL, 120, 0.05), metric_day(INCIDENT, 1840, 7.25)]
    events = day_materializations("system_metric_daily", days, {"dagster/table_name": dg.MetadataValue.text("t")})
    assert [e.partition for e in events] == ["2026-11-20", "2026-11-21"]
    assert [e.metadata["avgLatencyMs"].value for e in events] == [120, 1840]
    assert all(e.asset_key == dg.AssetKey("system_metric_daily") for e in events)
    # no day copies another day's entries: the metadata of N days is N times that of one
    assert {len(e.metadata) for e in events} == {len(events[0].metadata)}
    assert all(set(e.metadata["raw_fingerprints"].value) == {e.partition} for e in events)


def test_daily_check_specs_are_partitioned_like_the_rollups():
    spec = daily_check_spec("totals_match_samples", "system_metric_daily", "d", blocking=True,
                            additional_deps=["system_health_config"])
    assert spec.partitions_def == DAILY_PARTITIONS
    assert spec.blocking
    assert [d.asset_key for d in spec.additional_deps] == [dg.AssetKey("system_health_config")]


def test_a_backfill_reports_one_check_evaluation_per_day_with_its_partition_and_target():
    outcomes = [checks.health_day(NORMAL, (120, 0.05), THRESHOLDS), checks.health_day(INCIDENT, (1840, 7.25), THRESHOLDS)]
    target = daily_report.materialization_target(42, "r", 1.0)
    evaluations = day_check_evaluations("health_thresholds", "system_metric_daily", outcomes, blocking=False,
                                        targets={INCIDENT: target})
    assert [(e.partition, e.passed) for e in evaluations] == [("2026-11-20", True), ("2026-11-21", False)]
    assert evaluations[1].severity == dg.AssetCheckSeverity.ERROR
    assert evaluations[1].target_materialization_data == target
    assert evaluations[0].target_materialization_data is None
    assert evaluations[1].metadata["avgLatencyMs"] == dg.MetadataValue.int(1840)
    assert check_outcome_summary(outcomes)["days_failed"] == dg.MetadataValue.int(1)


def test_the_check_target_built_from_public_api_is_the_record_dagster_stores():
    """daily_report builds the target with dg.deserialize_value; the test (only) imports Dagster's class to
    prove it is that record, equal to one built directly, and survives the event log's round trip."""
    target = daily_report.materialization_target(42, "run-1", 1.5)
    assert isinstance(target, AssetCheckEvaluationTargetMaterializationData)
    assert target == AssetCheckEvaluationTargetMaterializationData(storage_id=42, run_id="run-1", timestamp=1.5)
    evaluation = dg.AssetCheckEvaluation(asset_key=dg.AssetKey("client_daily_usage"), check_name="c", passed=True,
                                         target_materialization_data=target, partition="2026-11-20")
    assert dg.deserialize_value(dg.serialize_value(evaluation)).target_materialization_data == target


def test_a_one_day_run_reports_plain_check_results():
    (result,) = day_check_results("counts_match_events", "client_daily_usage",
                                  [checks.reconciliation_day(NORMAL, "2 pair(s) differ", 10)])
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert result.asset_key == dg.AssetKey("client_daily_usage")
    assert "2 pair(s) differ" in (result.description or "")


def test_health_day_levels():
    assert checks.health_day(NORMAL, (499, 0.99), THRESHOLDS).passed
    warn = checks.health_day(NORMAL, (500, 0.5), THRESHOLDS)
    assert not warn.passed and warn.severity == dg.AssetCheckSeverity.WARN
    critical_rate = checks.health_day(NORMAL, (700, 5.0), THRESHOLDS)
    assert critical_rate.severity == dg.AssetCheckSeverity.ERROR
    assert "errorRate 5 is at or above its critical threshold 5" in critical_rate.description
    assert checks.health_day(NORMAL, None, THRESHOLDS).passed  # no samples: nothing to judge
    missing = checks.health_day(NORMAL, (100, 0.1), None)
    assert not missing.passed and missing.severity == dg.AssetCheckSeverity.WARN


def test_reconciliation_day_judges_only_days_with_complete_raw_rows():
    assert checks.reconciliation_day(NORMAL, None, 5).passed
    assert checks.reconciliation_day(NORMAL, None, 0).metadata["judged"] == dg.MetadataValue.int(0)
    kept = checks.reconciliation_day(NORMAL, "would differ", 3, kept="raw rows are missing")
    assert kept.passed and "kept" in kept.description
    failed = checks.reconciliation_day(NORMAL, "aggregate 1/0 requests/errors, samples 2/0", 4)
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR


def test_null_module_day_warns_with_the_count():
    assert checks.null_module_day(NORMAL, 0).passed
    warn = checks.null_module_day(NORMAL, 3)
    assert not warn.passed and warn.severity == dg.AssetCheckSeverity.WARN
    assert warn.metadata["null_module_events"] == dg.MetadataValue.int(3)


def test_the_freshness_policy_expects_the_nightly_hour_by_three_utc():
    policy = checks.ROLLUP_FRESHNESS_POLICY
    assert policy.deadline_cron == "0 3 * * *"
    assert policy.timezone == "UTC"


def test_a_day_check_defaults_to_error_severity():
    assert DayCheck(NORMAL, False, "x").severity == dg.AssetCheckSeverity.ERROR


def _failed(day: date, severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(asset_key=dg.AssetKey("system_metric_daily"), check_name="health_thresholds",
                                   passed=False, severity=severity, description=f"{day} breached",
                                   partition=str(day))


def test_a_standing_incident_fails_the_verdict_of_a_run_that_judged_only_healthy_days():
    """The nightly run judges yesterday (healthy); the incident day two days earlier still stands."""
    failures = standing_failures_of({str(INCIDENT): _failed(INCIDENT)}, [DayCheck(date(2026, 11, 23), True, "ok")])
    assert [f.day for f in failures] == [str(INCIDENT)]
    verdict = standing_evaluation("health_thresholds", "system_metric_daily", failures, judged_now=1)
    assert not verdict.passed and verdict.severity == dg.AssetCheckSeverity.ERROR and verdict.partition is None
    assert verdict.metadata["standing_failed_days"].value == {str(INCIDENT): "ERROR"}
    assert str(INCIDENT) in verdict.description and not verdict.blocking
    assert is_standing_evaluation(verdict) and not is_standing_evaluation(_failed(INCIDENT))


def test_a_day_judged_again_replaces_its_earlier_verdict_and_warnings_alone_stay_warnings():
    fixed = standing_failures_of({str(INCIDENT): _failed(INCIDENT)}, [DayCheck(INCIDENT, True, "thresholds raised")])
    assert fixed == []
    verdict = standing_evaluation("health_thresholds", "system_metric_daily", fixed, judged_now=1)
    assert verdict.passed and verdict.metadata["days_failing"].value == 0

    warned = standing_failures_of(
        {str(NORMAL): _failed(NORMAL, dg.AssetCheckSeverity.WARN)},
        [DayCheck(INCIDENT, False, "events without module", severity=dg.AssetCheckSeverity.WARN)],
    )
    verdict = standing_evaluation("no_events_without_module", "client_daily_usage", warned, judged_now=1)
    assert verdict.severity == dg.AssetCheckSeverity.WARN and not verdict.passed
    assert f"{NORMAL}..{INCIDENT}" in verdict.description
