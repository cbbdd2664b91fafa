"""What Dagster records from `daily_report.report`, in a real (ephemeral) instance, without a database.

Pins the Dagster 1.13 behaviour the per-day report relies on: in a partition-range run, the per-day
materializations are each partition's latest, every check has one result per partition that targets it
(so the partition's check status counts it), and a failed blocking check still fails the step.
"""

from datetime import date, timedelta

import dagster as dg

from erp_pipelines.rollups import checks, daily_report

PARTITIONS = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="UTC")
FIRST = date(2026, 1, 1)
DAYS = [FIRST + timedelta(days=n) for n in range(3)]
INCIDENT = DAYS[1]
THRESHOLDS = {"latency": {"warning": 500, "critical": 1000}, "errorRate": {"warning": 1, "critical": 5}}
RANGE = {"dagster/asset_partition_range_start": str(DAYS[0]), "dagster/asset_partition_range_end": str(DAYS[-1])}


def toy_rollup(broken_day: date | None = None) -> dg.AssetsDefinition:
    """An asset shaped like system_metric_daily that reports fixed per-day figures."""

    @dg.asset(
        name="metric_daily",
        partitions_def=PARTITIONS,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=[
            daily_report.daily_check_spec("totals", "metric_daily", "d", blocking=True, partitions_def=PARTITIONS),
            daily_report.daily_check_spec("health", "metric_daily", "d", partitions_def=PARTITIONS),
            dg.AssetCheckSpec("per_run", asset="metric_daily"),  # judged once per run, no partitions_def
        ],
    )
    def metric_daily(context: dg.AssetExecutionContext):
        start = PARTITIONS.time_window_for_partition_key(context.partition_key_range.start).start.date()
        end = PARTITIONS.time_window_for_partition_key(context.partition_key_range.end).start.date()
        days = [d for d in DAYS if start <= d <= end]
        latency = {d: 1900 if d == INCIDENT else 300 for d in days}
        figures = [daily_report.DayFigures(d, 1, 1440, {"avgLatencyMs": latency[d]}, row_count=1) for d in days]
        yield from daily_report.report(
            context,
            "metric_daily",
            run_metadata={"days_in_window": dg.MetadataValue.int(len(days))},
            days=figures,
            checks={
                "totals": [checks.reconciliation_day(d, "differs" if d == broken_day else None, 1440) for d in days],
                "health": [checks.health_day(d, (latency[d], 0.5), THRESHOLDS) for d in days],
            },
            run_checks=[dg.AssetCheckResult(check_name="per_run", asset_key="metric_daily", passed=True)],
        )

    return metric_daily


def latest_latency(instance: dg.DagsterInstance, day: date) -> int:
    record = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("metric_daily"), asset_partitions=[str(day)]), limit=1
    ).records[0]
    return record.asset_materialization.metadata["avgLatencyMs"].value


def check_status(instance: dg.DagsterInstance, name: str, standing: bool = False) -> dict[str | None, tuple[str, bool]]:
    """Per partition, the check's latest status; `standing`: with the run's standing verdict (partition None,
    rollups/daily_report.py), which the partitions view leaves out."""
    key = dg.AssetCheckKey(dg.AssetKey("metric_daily"), name)
    return {
        info.partition_key: (info.latest_execution_status.value, info.is_current)
        for info in instance.event_log_storage.get_asset_check_partition_info([key])
        if standing or info.partition_key is not None
    }


def standing_verdict(instance: dg.DagsterInstance, name: str) -> tuple[bool, str]:
    """(passed, severity) of the check's newest execution: what its detail page shows."""
    key = dg.AssetCheckKey(dg.AssetKey("metric_daily"), name)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    assert record.partition is None, "the newest execution of a per-day check is its standing verdict"
    return record.evaluation.passed, record.evaluation.severity.value


def test_a_range_run_leaves_each_partition_its_own_figures_and_check_results(instance):
    result = dg.materialize([toy_rollup()], instance=instance, tags=RANGE)
    assert result.success
    assert [latest_latency(instance, d) for d in DAYS] == [300, 1900, 300]
    health = check_status(instance, "health")
    assert health == {str(DAYS[0]): ("SUCCEEDED", True), str(INCIDENT): ("FAILED", True),
                      str(DAYS[2]): ("SUCCEEDED", True)}
    assert set(check_status(instance, "totals").values()) == {("SUCCEEDED", True)}
    # the newest execution (the detail page) says what the checks list says: the incident day stands
    assert standing_verdict(instance, "health") == (False, "ERROR")
    assert standing_verdict(instance, "totals") == (True, "ERROR")
    per_run = [e for e in result.get_asset_check_evaluations() if e.check_name == "per_run"]
    assert [(e.partition, e.passed) for e in per_run] == [(None, True)]
    run_level = result.asset_materializations_for_node("metric_daily")[0].metadata
    assert "avgLatencyMs" not in run_level  # the run's own materialization holds no one day's figures


def test_a_one_day_run_puts_the_figures_on_its_materialization(instance):
    result = dg.materialize([toy_rollup()], instance=instance, partition_key=str(INCIDENT))
    assert result.success
    (materialization,) = result.asset_materializations_for_node("metric_daily")
    assert materialization.metadata["avgLatencyMs"].value == 1900
    assert {e.check_name: (e.partition, e.passed) for e in result.get_asset_check_evaluations()} == {
        "totals": (str(INCIDENT), True), "health": (str(INCIDENT), False), "per_run": (None, True)}
    assert check_status(instance, "health") == {str(INCIDENT): ("FAILED", True)}
    assert standing_verdict(instance, "health") == (False, "ERROR")


def test_a_nightly_run_of_a_healthy_day_still_shows_the_incident_that_stands(instance):
    """Issue 17: after the range run, a one-day run of the newest (healthy) day: Dagster's newest execution
    is that day's, so its detail page said Passed while the list said Failed (the incident day)."""
    assert dg.materialize([toy_rollup()], instance=instance, tags=RANGE).success
    result = dg.materialize([toy_rollup()], instance=instance, partition_key=str(DAYS[2]))
    assert result.success
    assert check_status(instance, "health")[str(INCIDENT)] == ("FAILED", True)  # the list's worst day
    assert standing_verdict(instance, "health") == (False, "ERROR")  # the detail: the same
    (standing,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "health" and e.partition is None]
    assert standing.metadata["standing_failed_days"].value == {str(INCIDENT): "ERROR"}


def test_a_failed_blocking_check_fails_the_range_run_and_names_the_day(instance):
    result = dg.materialize([toy_rollup(broken_day=DAYS[2])], instance=instance, tags=RANGE, raise_on_error=False)
    assert not result.success
    totals = check_status(instance, "totals")
    assert totals[str(DAYS[2])] == ("FAILED", True) and totals[str(DAYS[0])] == ("SUCCEEDED", True)
