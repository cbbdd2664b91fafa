"""The data paths of issue 18 ("Why" 3): what a hostile ERP did to lose or hide data, each closed.

One test per path: late events without a module (deleted by retention before), a lost own schema with late
rows for a pruned day (the aggregate was rebuilt from the late rows), a raw row stamped in the year 20000 or
at `infinity` (the sensors failed on every tick), rows written with the triggers bypassed into a day rolled
up while empty (never refreshed), and late rows for a pruned day outside the nightly window (never reported).
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import psycopg
import pytest

from erp_pipelines import own_schema
from erp_pipelines.automation.sensors import erp_raw_tables_sensor, late_data_sensor
from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.rollups import steps, time_zone
from erp_pipelines.rollups.usage_daily import USAGE_DAILY, USAGE_NULL_MODULE_CHECK, client_daily_usage
from erp_pipelines_tests.support.capture import install_capture, marks, run_request
from erp_pipelines_tests.support.erp_data import add_clients, insert_events, insert_samples, set_health_config
from erp_pipelines_tests.support.ledger import ledger_rows, pruned_days
from erp_pipelines_tests.support.rollups import (
    ago,
    at,
    check_results,
    metric_rows,
    prune,
    retention_metadata,
    roll_up,
    rows_on,
    usage_rows,
)

OLD = ago(20)  # older than the 7-day retentions used here
EVENTS_RETENTION = {"usage_event_retention_days": 7}
OUT_OF_RANGE = ("20000-01-01 00:00:00", "infinity", "-infinity")


@pytest.fixture
def events_and_samples(erp_tables, resources, instance) -> psycopg.Connection:
    """Events (with a module) and samples on OLD, rolled up; retention settings of 7 days."""
    conn = erp_tables
    set_health_config(conn, metrics_days=7, aggregate_days=365)
    client = add_clients(conn, 1)[0]
    insert_events(conn, [(client, 1 + h % 2, h, "view" if h % 2 else "edit", at(OLD, h)) for h in range(12)])
    insert_samples(conn, [(100 + h, 0.5, 10 * h, h % 3, at(OLD, h)) for h in range(6)])
    roll_up(resources, instance, OLD)
    return conn


def _drop_own_schema(conn: psycopg.Connection) -> None:
    conn.execute(f"DROP SCHEMA {own_schema.own_schema_name()} CASCADE")


def test_late_events_without_module_are_never_pruned_and_are_counted(events_and_samples, resources, instance):
    conn = events_and_samples
    client = add_clients(conn, 1)[0]
    insert_events(conn, [(client, None, i, "view", at(OLD, 20)) for i in range(25)])  # late, no module
    roll_up(resources, instance, OLD)  # the refresh the late-data sensor asks for
    result = prune(resources, instance, **EVENTS_RETENTION)
    assert result.success
    left = conn.execute(
        "SELECT count(*) FILTER (WHERE module_id IS NULL), count(*) FROM client_usage_events "
        "WHERE occurred_at >= %s AND occurred_at < %s", (at(OLD), at(OLD + timedelta(days=1)))
    ).fetchone()
    assert left == (25, 25)  # the 12 events with a module went with the day; none of the 25 without
    assert pruned_days(conn, "client_usage_events") == {OLD: 12}
    assert retention_metadata(result)["null_key_rows_kept"]["client_usage_events"] == {str(OLD): 25}
    # they are not late rows, and the nightly rollup keeps counting them in its check
    again = roll_up(resources, instance, OLD, assets=[client_daily_usage])
    checks = check_results(again)
    assert checks[("client_daily_usage", steps.LATE_ROWS_CHECK)].passed
    assert not checks[("client_daily_usage", USAGE_NULL_MODULE_CHECK)].passed
    second = prune(resources, instance, **EVENTS_RETENTION)
    assert rows_on(conn, "client_usage_events", "occurred_at", OLD) == 25
    assert retention_metadata(second)["late_rows_kept"]["client_usage_events"] == {}
    # our schema lost: only rows no aggregate could hold are left, so the day is kept without a stop
    before = usage_rows(conn, OLD)
    _drop_own_schema(conn)
    assert roll_up(resources, instance, OLD, assets=[client_daily_usage]).success
    assert usage_rows(conn, OLD) == before


def test_a_lost_own_schema_never_rebuilds_a_pruned_day_from_late_rows(events_and_samples, resources, instance):
    conn = events_and_samples
    assert prune(resources, instance, **EVENTS_RETENTION).success
    usage_before, metric_before = usage_rows(conn, OLD), metric_rows(conn)[OLD]
    _drop_own_schema(conn)  # "touches no ERP data" (docs/own_schema.md)
    client = add_clients(conn, 2)[1]
    insert_events(conn, [(client, 3, 100 + i, "view", at(OLD, 22)) for i in range(40)])  # more than pruned
    insert_samples(conn, [(5, 0.0, 100_000, 0, at(OLD, 23))])
    result = roll_up(resources, instance, OLD, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert "adopt_existing_aggregates" in message and str(OLD) in message
    assert usage_rows(conn, OLD) == usage_before and metric_rows(conn)[OLD] == metric_before
    # retention deletes none of the late rows
    assert prune(resources, instance, **EVENTS_RETENTION).success
    assert rows_on(conn, "client_usage_events", "occurred_at", OLD) == 40
    assert rows_on(conn, "system_metric_samples", "collected_at", OLD) == 1


def test_adopting_existing_aggregates_records_them_without_changing_them(events_and_samples, resources, instance):
    conn = events_and_samples
    assert prune(resources, instance, **EVENTS_RETENTION).success
    usage_before, metric_before = usage_rows(conn, OLD), metric_rows(conn)[OLD]
    _drop_own_schema(conn)
    client = add_clients(conn, 2)[1]
    insert_events(conn, [(client, 3, 100 + i, "view", at(OLD, 22)) for i in range(40)])
    adopted = roll_up(resources, instance, OLD, config={"adopt_existing_aggregates": True})
    assert adopted.success
    assert usage_rows(conn, OLD) == usage_before and metric_rows(conn)[OLD] == metric_before
    assert set(pruned_days(conn, "client_usage_events")) == {OLD}
    # from now on a plain nightly run keeps the day and reports the late rows; retention keeps them raw
    nightly = roll_up(resources, instance, OLD, assets=[client_daily_usage])
    late = check_results(nightly)[("client_daily_usage", steps.LATE_ROWS_CHECK)]
    assert not late.passed and late.metadata["late_rows_by_day"].value == {str(OLD): 40}
    assert usage_rows(conn, OLD) == usage_before
    assert prune(resources, instance, **EVENTS_RETENTION).success
    assert rows_on(conn, "client_usage_events", "occurred_at", OLD) == 40


def test_a_lost_own_schema_stops_even_when_the_raw_rows_reproduce_the_aggregate(
    events_and_samples, resources, instance
):
    conn = events_and_samples
    usage_before = usage_rows(conn, OLD)
    _drop_own_schema(conn)  # they might be late rows equal to pruned ones: never taken as held
    result = roll_up(resources, instance, OLD, raise_on_error=False, assets=[client_daily_usage])
    assert not result.success and usage_rows(conn, OLD) == usage_before
    assert roll_up(resources, instance, OLD, config={"adopt_existing_aggregates": True},
                   assets=[client_daily_usage]).success
    assert usage_rows(conn, OLD) == usage_before and OLD not in ledger_rows(conn, "client_daily_usage")
    assert prune(resources, instance, **EVENTS_RETENTION).success
    assert rows_on(conn, "client_usage_events", "occurred_at", OLD) == 12  # kept raw, never risked


def test_sensors_survive_rows_stamped_in_the_year_20000_and_at_infinity(erp_tables, resources, instance, erp_url):
    conn = erp_tables
    install_capture(conn)
    client = add_clients(conn, 1)[0]
    insert_events(conn, [(client, 1, 1, "view", at(OLD, 1))])
    roll_up(resources, instance, OLD)
    for stamp in OUT_OF_RANGE:
        conn.execute(
            "INSERT INTO client_usage_events (client_id, module_id, user_id, event_type, occurred_at) "
            "VALUES (%s, 1, 2, 'view', %s::timestamp)", (client, stamp)
        )
        conn.execute(
            'INSERT INTO system_metric_samples ("latencyMs", "errorRatePct", "reqCount", "errCount", collected_at) '
            "VALUES (1, 0, 1, 0, %s::timestamp)", (stamp,)
        )
    insert_events(conn, [(client, 1, 3, "view", at(OLD, 2))])
    observed = erp_raw_tables_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    newest = {e.asset_key.path[-1]: e.metadata["newest_row_at"].value for e in observed.asset_events}
    # the demo's third raw table (rate_limit_violations) has no rows in this database
    assert newest == {"client_usage_events": "infinity", "system_metric_samples": "infinity",
                      "rate_limit_violations": "(empty)"}
    tick = late_data_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    requests = [(r.partition_key, r.asset_selection) for r in tick.run_requests]
    assert requests == [(str(OLD), [dg.AssetKey("client_daily_usage")])]  # the in-range day still refreshed
    assert run_request(erp_url, instance, tick.run_requests[0]).success
    # the out-of-range rows are reported by the time check of the next rollup run
    result = roll_up(resources, instance, OLD)
    for rollup in ("client_daily_usage", "system_metric_daily"):
        found = check_results(result)[(rollup, time_zone.TIME_ZONE_CHECK)]
        assert not found.passed and found.metadata["out_of_range_rows"].value == len(OUT_OF_RANGE)


def test_rows_written_with_triggers_bypassed_into_a_day_rolled_up_empty_are_refreshed(
    erp_tables, resources, instance, erp_url
):
    conn = erp_tables
    set_health_config(conn, metrics_days=7, aggregate_days=365)
    install_capture(conn)
    roll_up(resources, instance, OLD)  # rolled up while empty
    client = add_clients(conn, 1)[0]
    with conn.transaction():  # a restore / logical replication: no trigger fires
        conn.execute("SET LOCAL session_replication_role = replica")
        insert_events(conn, [(client, 1, i, "view", at(OLD, 3)) for i in range(5)])
        insert_samples(conn, [(100, 0.5, 10, 1, at(OLD, 4))])
    assert marks(conn) == []
    result = prune(resources, instance, **EVENTS_RETENTION)
    assert result.success
    assert rows_on(conn, "client_usage_events", "occurred_at", OLD) == 5  # kept: no aggregate holds them
    requested = retention_metadata(result)["refresh_requested"]
    assert requested == {"client_usage_events": [str(OLD)], "system_metric_samples": [str(OLD)],
                         "rate_limit_violations": []}
    tick = late_data_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert [r.partition_key for r in tick.run_requests] == [str(OLD)]
    assert run_request(erp_url, instance, tick.run_requests[0]).success
    assert sum(v[0] for v in usage_rows(conn, OLD).values()) == 5
    assert metric_rows(conn)[OLD][2] == 10
    assert prune(resources, instance, **EVENTS_RETENTION).success
    assert rows_on(conn, "client_usage_events", "occurred_at", OLD) == 0  # now provably held: pruned
    # a second retention run asks for nothing more
    assert retention_metadata(prune(resources, instance, **EVENTS_RETENTION))["refresh_requested"] == {
        "client_usage_events": [], "system_metric_samples": [], "rate_limit_violations": []
    }


def test_every_rollup_run_warns_while_a_capture_trigger_is_disabled_or_dropped_by_hand(
    erp_tables, resources, instance
):
    """pipeline_state re-enables disabled triggers only when the schema sync runs: in between, every rollup run
    says so in its capture_triggers_enabled check (WARN), naming the trigger and the step that fixes it."""
    conn = erp_tables
    before = check_results(roll_up(resources, instance, OLD))
    assert before[("client_daily_usage", steps.CAPTURE_CHECK)].passed  # capture not installed: no alarm
    install_capture(conn)
    insert_name = "erp_pipelines_capture_client_usage_events_insert"
    conn.execute(f"ALTER TABLE client_usage_events DISABLE TRIGGER {insert_name}")
    conn.execute("DROP TRIGGER erp_pipelines_capture_system_metric_samples_delete ON system_metric_samples")
    found = check_results(roll_up(resources, instance, OLD))
    usage, metric = found[("client_daily_usage", steps.CAPTURE_CHECK)], found[("system_metric_daily", steps.CAPTURE_CHECK)]
    assert not usage.passed and usage.severity == dg.AssetCheckSeverity.WARN
    assert usage.metadata["triggers_disabled"].value == [insert_name]
    assert "pipeline_state" in usage.description
    assert not metric.passed
    assert metric.metadata["triggers_missing"].value == ["erp_pipelines_capture_system_metric_samples_delete"]
    install_capture(conn)  # what pipeline_state does
    again = check_results(roll_up(resources, instance, OLD))
    assert all(again[(rollup, steps.CAPTURE_CHECK)].passed
               for rollup in ("client_daily_usage", "system_metric_daily"))


def test_late_rows_for_a_pruned_day_outside_the_window_are_reported_by_the_nightly_run(
    events_and_samples, resources, instance
):
    conn = events_and_samples
    assert prune(resources, instance, **EVENTS_RETENTION).success
    client = add_clients(conn, 1)[0]
    insert_events(conn, [(client, 2, 7, "view", at(OLD, 5)), (client, 2, 8, "view", at(OLD, 6))])
    yesterday = ago(1)
    nightly = roll_up(resources, instance, yesterday, assets=[client_daily_usage])  # OLD is not in the window
    late = check_results(nightly)[("client_daily_usage", steps.LATE_ROWS_CHECK)]
    assert not late.passed and late.severity == dg.AssetCheckSeverity.WARN
    assert late.metadata["late_rows_by_day"].value == {str(OLD): 2}


def test_a_rollup_error_names_the_flag_and_the_docs():
    error = steps.unledgered_aggregate_error(USAGE_DAILY, [OLD])
    assert isinstance(error, ErpPipelinesError)
    assert "adopt_existing_aggregates" in str(error) and "docs/own_schema.md" in str(error)
