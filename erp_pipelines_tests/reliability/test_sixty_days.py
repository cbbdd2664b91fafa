"""The invariant over time: 60 simulated days of the app writing, the nightly schedule, the late-data sensor
and retention, with a 5-day scheduler outage in the middle.

Days are fixed (from 2026-01-01), not relative to the wall clock: each simulated night the schedule
`nightly_rollup_schedule` is evaluated at 02:00 UTC with `dg.build_schedule_context(scheduled_execution_time=)`
and the RunRequest it returns is executed as it is (tags, partition key) by the real `nightly_rollup_job`;
the late-data sensor is evaluated after it and its requests run `rollup_refresh_job`. Retention counts
back from the simulated day (run config `today`; the rollups' data-loss guard takes the same `today`).
Settings: metricsRetentionDays 7, aggregateRetentionDays 30 (the minimum), usage_event_retention_days 14.

Checked every simulated day the scheduler runs:
- raw rows of a day are all there or all gone, and gone only for days older than their retention cutoff;
- every aggregate of a day still within aggregateRetentionDays equals the independent reference over
  EVERY raw row that day ever had (so no raw row was deleted before its day was aggregated and
  reconciled, and late rows were picked up);
- after the outage, the first tick asks for the missed days by itself (one catch-up run), and they are
  all materialized.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from erp_pipelines.automation.schedules import nightly_rollup_schedule
from erp_pipelines.automation.sensors import late_data_sensor
from erp_pipelines.defs_factory import build_defs
from erp_pipelines.resources import ErpDatabase
from erp_pipelines_tests.support.aggregates import aggregates, assert_equals_reference
from erp_pipelines_tests.support.capture import install_capture
from erp_pipelines_tests.support.erp_data import (
    add_clients,
    add_modules,
    create_erp_tables,
    insert_events,
    insert_samples,
    set_health_config,
)
from erp_pipelines_tests.support.raw_rows import day_events, day_samples
from erp_pipelines_tests.support.runs import RANGE_END, RANGE_START

BASE = date(2026, 1, 1)
N_DAYS = 60
OUTAGE_TICKS = {BASE + timedelta(days=d) for d in range(31, 36)}  # no evaluation on these 5 mornings
METRICS_DAYS, AGGREGATE_DAYS, EVENT_DAYS = 7, 30, 14
LATE_BY = 4  # days; beyond the nightly lookback (ERP_ROLLUP_LOOKBACK_DAYS, default 2), inside raw retention


def rollup_config(today: date) -> dict:
    return {
        "system_metric_daily": {"config": {"today": str(today)}},
        "client_daily_usage": {"config": {"today": str(today), "usage_event_retention_days": EVENT_DAYS}},
    }


def nightly_config(today: date) -> dict:
    return {
        "ops": {
            **rollup_config(today),
            "retention_pruning": {"config": {"today": str(today), "usage_event_retention_days": EVENT_DAYS}},
        }
    }


def per_day(rows: list[tuple]) -> Counter:
    return Counter(r[4].date() for r in rows)


@pytest.mark.slow
def test_sixty_days_with_an_outage_never_lose_a_raw_row(erp_url, conn):
    create_erp_tables(conn)
    install_capture(conn)  # what pipeline_state installs: the late-data sensor reads its marks
    clients = add_clients(conn, 3)
    add_modules(conn, 3)
    set_health_config(conn, metrics_days=METRICS_DAYS, aggregate_days=AGGREGATE_DAYS)
    defs = build_defs(ErpDatabase(url=erp_url))
    nightly = defs.resolve_job_def("nightly_rollup_job")
    refresh = defs.resolve_job_def("rollup_refresh_job")
    sensor_resources = {"erp_db": ErpDatabase(url=erp_url)}
    ever_samples: list[tuple] = []
    ever_events: list[tuple] = []
    cursor = None
    caught_up = False
    late_days_refreshed: set[str] = set()
    with dg.instance_for_test() as instance:
        for k in range(N_DAYS):
            day = BASE + timedelta(days=k)
            # the app writes the day's rows; every 4th day also late rows for a day four days back: older
            # than the nightly lookback (2 days), so only the late-data sensor can pick them up
            new_events = day_events(clients, day, 6, salt=k)
            new_samples = day_samples(day, 3, salt=k)
            if k >= LATE_BY and k % 4 == 0:
                new_events += day_events(clients, day - timedelta(days=LATE_BY), 2, salt=100 + k)
                new_samples += day_samples(day - timedelta(days=LATE_BY), 1, salt=100 + k)
            insert_events(conn, new_events)
            insert_samples(conn, new_samples)
            ever_events += new_events
            ever_samples += new_samples

            today = day + timedelta(days=1)  # the next morning, 02:00 UTC
            if today in OUTAGE_TICKS:
                continue  # the scheduler (and the sensor daemon) is down: nothing is evaluated
            request = nightly_rollup_schedule(
                dg.build_schedule_context(
                    instance=instance,
                    scheduled_execution_time=datetime(today.year, today.month, today.day, 2, tzinfo=UTC),
                )
            )
            assert isinstance(request, dg.RunRequest), request
            if today - timedelta(days=1) in OUTAGE_TICKS:  # the first tick after the outage
                assert request.partition_key is None
                assert (request.tags[RANGE_START], request.tags[RANGE_END]) == (
                    str(min(OUTAGE_TICKS) - timedelta(days=1)),
                    str(day),
                ), "the outage days should be caught up in one run, without anyone asking"
                caught_up = True
            else:  # yesterday, with the lookback's re-roll of the days before it once there are some
                assert request.tags.get(RANGE_END, request.partition_key) == str(day)
            result = nightly.execute_in_process(
                instance=instance,
                tags=request.tags,
                partition_key=request.partition_key,
                run_config=nightly_config(today),
            )
            assert result.success, day
            sensed = late_data_sensor(
                dg.build_sensor_context(instance=instance, resources=sensor_resources, cursor=cursor)
            )
            cursor = sensed.cursor
            for late in sensed.run_requests:
                late_days_refreshed.add(late.partition_key)
                assert refresh.execute_in_process(
                    instance=instance,
                    partition_key=late.partition_key,
                    asset_selection=late.asset_selection,
                    tags=late.tags,
                    run_config={"ops": rollup_config(today)},
                ).success

            # -- the invariant, this morning --
            samples_cutoff = today - timedelta(days=METRICS_DAYS)
            events_cutoff = today - timedelta(days=EVENT_DAYS)
            aggregate_cutoff = today - timedelta(days=AGGREGATE_DAYS)
            ever_s, ever_e = per_day(ever_samples), per_day(ever_events)
            now_s = dict(conn.execute(
                "SELECT date_trunc('day', collected_at)::date, count(*) FROM system_metric_samples GROUP BY 1"
            ).fetchall())
            now_e = dict(conn.execute(
                "SELECT date_trunc('day', occurred_at)::date, count(*) FROM client_usage_events GROUP BY 1"
            ).fetchall())
            for d, n in ever_s.items():
                assert now_s.get(d, 0) in (0, n), f"{today}: samples of {d} half-pruned"
                assert now_s.get(d, 0) == n or d < samples_cutoff, f"{today}: samples of {d} pruned too early"
            for d, n in ever_e.items():
                assert now_e.get(d, 0) in (0, n), f"{today}: events of {d} half-pruned"
                assert now_e.get(d, 0) == n or d < events_cutoff, f"{today}: events of {d} pruned too early"
            metric_days = set(aggregates(conn)[0])
            kept = {d for d in (BASE + timedelta(days=i) for i in range(k + 1)) if d >= aggregate_cutoff}
            assert metric_days == kept, f"{today}: aggregates {sorted(metric_days ^ kept)} unexpected/missing"
            # every day still aggregated equals the reference over every row it EVER had
            assert_equals_reference(conn, ever_samples, ever_events, kept)
            # and a pruned day's aggregate exists (it was aggregated and reconciled before its rows went)
            pruned = {d for d in ever_s if now_s.get(d, 0) == 0} | {d for d in ever_e if now_e.get(d, 0) == 0}
            assert {d for d in pruned if d >= aggregate_cutoff} <= metric_days

    assert caught_up
    assert now_s.get(BASE, 0) == 0 and now_e.get(BASE, 0) == 0  # retention did prune along the way
    # the late rows were noticed by the sensor and rolled up (not only by chance in a later nightly run)
    assert len(late_days_refreshed) >= 8
