"""The daily rollups against an independent reference, on a real PostgreSQL, through real Dagster runs."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from urllib.parse import quote

import dagster as dg
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from erp_pipelines.resources import ErpDatabase
from erp_pipelines.rollups.assets import (
    METRIC_HEALTH_CHECK,
    METRIC_RECONCILIATION_CHECK,
    USAGE_NULL_MODULE_CHECK,
    USAGE_RECONCILIATION_CHECK,
    client_daily_usage,
    system_metric_daily,
)
from erp_pipelines_tests.support.erp_data import (
    add_clients,
    insert_events,
    insert_samples,
    set_health_config,
)
from erp_pipelines_tests.support.generated import bounded
from erp_pipelines_tests.support.instances import fresh_instance
from erp_pipelines_tests.support.ledger import record_pruned_day
from erp_pipelines_tests.support.reference import KNOWN_EVENT_TYPES, metric_reference, usage_reference
from erp_pipelines_tests.support.rollups import metric_rows, usage_rows

ROLLUPS = [system_metric_daily, client_daily_usage]
DAY1 = date(2025, 3, 1)
WINDOW = {  # three partitions in one run
    "dagster/asset_partition_range_start": "2025-03-01",
    "dagster/asset_partition_range_end": "2025-03-03",
}
FAR_TIMEZONES = ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago", "America/St_Johns", "Asia/Kathmandu"]


def with_timezone(url: str, tz: str) -> str:
    """The URL with libpq `options=-c TimeZone=<tz>`: every session of the rollup runs in that zone."""
    return url + ("&" if "?" in url else "?") + "options=" + quote(f"-c TimeZone={tz}")


def assert_metrics_equal(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected)
    for day, (lat, rate, req, err) in expected.items():
        a_lat, a_rate, a_req, a_err = actual[day]
        assert (a_lat, a_req, a_err) == (lat, req, err), day
        assert (a_rate is None) == (rate is None), day
        if rate is not None:
            assert math.isclose(a_rate, rate, rel_tol=1e-9, abs_tol=1e-9), (day, a_rate, rate)


def materialize(resources: dict, instance: dg.DagsterInstance, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(ROLLUPS, resources=resources, instance=instance, **kwargs)


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


# -- generated data ---------------------------------------------------------------------------------------

SPECIAL_TIMES = [
    timedelta(0),  # exactly midnight: belongs to the day it starts
    timedelta(days=1),  # exactly the next midnight: the next day
    timedelta(days=1, microseconds=-1),  # the last microsecond of the day
    timedelta(hours=12),
]
moments = st.one_of(
    st.sampled_from(SPECIAL_TIMES),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3, microseconds=-1)),
).map(lambda delta: datetime(2025, 3, 1) + delta)
event_types = st.sampled_from(
    [
        "view",
        "VIEW",
        "Page_View",
        "read",
        "open",
        "create",
        "Insert",
        "add",
        "edit",
        "UPDATE",
        "modify",
        "delete",
        "Remove",
        "login",
        "export",
        "Unknown_Thing",
    ]
)
events_strategy = st.lists(
    st.tuples(
        st.integers(0, 2),  # client index
        st.one_of(st.none(), st.integers(1, 3)),  # module_id, NULL included
        st.one_of(st.none(), st.integers(1, 5)),  # user_id, NULL included
        event_types,
        moments,
    ),
    max_size=60,
)
samples_strategy = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(0, 5000)),  # latencyMs, NULL included
        st.one_of(st.none(), st.floats(0, 100, allow_nan=False)),  # errorRatePct
        st.one_of(st.none(), st.just(0), st.integers(0, 10_000)),  # reqCount, 0 and NULL included
        st.one_of(st.none(), st.integers(0, 50)),  # errCount
        moments,
    ),
    max_size=40,
)


@bounded(25, 250)
@given(events=events_strategy, samples=samples_strategy, tz=st.sampled_from(FAR_TIMEZONES))
def test_rollups_equal_an_independent_reference(erp_tables, erp_url, events, samples, tz):
    """Any raw rows, any session TimeZone: the rollup of a 3-day window equals the Python reference."""
    conn = erp_tables
    conn.execute("DELETE FROM client_usage_events")
    conn.execute("DELETE FROM client_daily_usage")
    conn.execute("DELETE FROM system_metric_samples")
    conn.execute("DELETE FROM system_metric_daily")
    clients = add_clients(conn, 3)
    raw_events = [(clients[c], m, u, t, at) for c, m, u, t, at in events]
    insert_events(conn, raw_events)
    insert_samples(conn, samples)
    with fresh_instance() as instance:
        result = materialize({"erp_db": ErpDatabase(url=with_timezone(erp_url, tz))}, instance, tags=WINDOW)
    assert result.success
    assert usage_rows(conn) == usage_reference(raw_events)
    assert_metrics_equal(metric_rows(conn), metric_reference(samples))
    checks = check_results(result)
    assert checks[USAGE_RECONCILIATION_CHECK].passed
    assert checks[METRIC_RECONCILIATION_CHECK].passed
    by_key = {  # the latest materialization of each partition: that day's own figures
        (e.asset_key.path[-1], e.partition): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    days = ("2025-03-01", "2025-03-02", "2025-03-03")

    def day_sum(asset: str, label: str) -> int:
        return sum(by_key[(asset, d)][label].value for d in days)

    known = set(KNOWN_EVENT_TYPES)
    assert day_sum("client_daily_usage", "events_read") == len(raw_events)
    assert day_sum("client_daily_usage", "null_module_events") == sum(1 for e in raw_events if e[1] is None)
    assert day_sum("client_daily_usage", "uncategorized_events") == sum(
        1 for e in raw_events if e[3].lower() not in known
    )
    assert day_sum("system_metric_daily", "samples_read") == len(samples)
    for d in days:
        on_day = sum(1 for e in raw_events if str(e[4].date()) == d)
        assert by_key[("client_daily_usage", d)]["events_read"].value == on_day, d


def test_session_timezone_cannot_move_rows_across_days(erp_tables, erp_url, instance):
    """Rows at 23:30 and 00:00 UTC stay on their UTC day even with the session at UTC+14."""
    conn = erp_tables
    conn.execute(
        "ALTER DATABASE "
        + psycopg.sql.Identifier(conn.info.dbname).as_string(conn)
        + " SET TimeZone = 'Pacific/Kiritimati'"
    )
    client = add_clients(conn, 1)[0]
    insert_events(
        conn,
        [(client, 1, 1, "view", datetime(2025, 3, 1, 23, 30)), (client, 1, 2, "view", datetime(2025, 3, 2))],
    )
    result = materialize({"erp_db": ErpDatabase(url=erp_url)}, instance, tags=WINDOW)
    assert result.success
    assert usage_rows(conn) == {
        (date(2025, 3, 1), client, 1): (1, 0, 0, 0, 1),
        (date(2025, 3, 2), client, 1): (1, 0, 0, 0, 1),
    }


def _seed(conn: psycopg.Connection) -> list:
    clients = add_clients(conn, 2)
    events = [
        (clients[0], 1, 1, "view", datetime(2025, 3, 1, 8)),
        (clients[0], 1, 2, "edit", datetime(2025, 3, 1, 9)),
        (clients[0], 2, 1, "create", datetime(2025, 3, 1, 10)),
        (clients[1], 1, None, "delete", datetime(2025, 3, 2, 11)),
        (clients[1], None, 3, "view", datetime(2025, 3, 2, 12)),
        (clients[1], 2, 3, "login", datetime(2025, 3, 3, 0)),
    ]
    insert_events(conn, events)
    samples = [
        (100, 0.5, 1000, 5, datetime(2025, 3, 1, 1)),
        (200, 10.0, 0, 0, datetime(2025, 3, 1, 2)),
        (None, 1.0, 10, 1, datetime(2025, 3, 2, 3)),
    ]
    insert_samples(conn, samples)
    return events


def snapshot(conn: psycopg.Connection) -> tuple[list, list]:
    return (
        conn.execute("SELECT * FROM client_daily_usage ORDER BY 1, 2, 3").fetchall(),
        conn.execute("SELECT * FROM system_metric_daily ORDER BY day").fetchall(),
    )


def test_rerun_without_changes_leaves_identical_rows(erp_tables, resources, instance):
    conn = erp_tables
    _seed(conn)
    assert materialize(resources, instance, tags=WINDOW).success
    before = snapshot(conn)
    again = materialize(resources, instance, tags=WINDOW)
    assert again.success
    assert snapshot(conn) == before  # including updated_at / created_at: nothing was rewritten
    for event in again.get_asset_materialization_events():
        assert event.materialization.metadata["rows_written"].value == 0


def test_rerun_after_late_and_corrected_data_equals_the_raw_rows(erp_tables, resources, instance):
    conn = erp_tables
    events = _seed(conn)
    assert materialize(resources, instance, tags=WINDOW).success
    # late rows for a day already rolled up, and a correction that removes a whole (client, module) pair
    client = events[0][0]
    late = [
        (client, 1, 7, "VIEW", datetime(2025, 3, 1, 23, 59, 59)),
        (client, 3, 8, "remove", datetime(2025, 3, 1)),
    ]
    insert_events(conn, late)
    conn.execute("DELETE FROM client_usage_events WHERE module_id = 2 AND occurred_at < '2025-03-02'")
    insert_samples(conn, [(5000, None, 1, 1, datetime(2025, 3, 1, 23))])
    assert materialize(resources, instance, partition_key="2025-03-01").success
    raw = conn.execute(
        "SELECT client_id, module_id, user_id, event_type, occurred_at FROM client_usage_events"
    ).fetchall()
    assert usage_rows(conn) == usage_reference(raw)
    samples = conn.execute(
        'SELECT "latencyMs", "errorRatePct", "reqCount", "errCount", collected_at FROM system_metric_samples'
    ).fetchall()
    assert_metrics_equal(metric_rows(conn), metric_reference(samples))


def test_pruned_day_keeps_its_aggregate_and_says_so(erp_tables, resources, instance):
    conn = erp_tables
    _seed(conn)
    assert materialize(resources, instance, tags=WINDOW).success
    before = snapshot(conn)
    # as retention does: delete the day and record it in pruned_days
    conn.execute("DELETE FROM client_usage_events WHERE occurred_at < '2025-03-02'")
    conn.execute("DELETE FROM system_metric_samples WHERE collected_at < '2025-03-02'")
    record_pruned_day(conn, "client_usage_events", date(2025, 3, 1), "client_daily_usage")
    record_pruned_day(conn, "system_metric_samples", date(2025, 3, 1), "system_metric_daily")
    result = materialize(resources, instance, partition_key="2025-03-01")
    assert result.success
    assert snapshot(conn) == before
    for event in result.get_asset_materialization_events():
        assert event.materialization.metadata["days_kept_without_raw_rows"].value == 1
        assert event.materialization.metadata["rows_written"].value == 0
    checks = check_results(result)
    assert checks[USAGE_RECONCILIATION_CHECK].passed and checks[METRIC_RECONCILIATION_CHECK].passed
    logs = [record.user_message for record in instance.all_logs(result.run_id)]
    assert any("pruned" in m and "keep their aggregate" in m for m in logs)


def test_day_whose_raw_rows_the_erp_deleted_is_re_aggregated_not_taken_for_pruned(erp_tables, resources, instance):
    conn = erp_tables
    _seed(conn)
    assert materialize(resources, instance, tags=WINDOW).success
    # a GDPR delete of every raw row of 2025-03-01 (no pruned_days entry: retention did not do it)
    conn.execute("DELETE FROM client_usage_events WHERE occurred_at < '2025-03-02'")
    conn.execute("DELETE FROM system_metric_samples WHERE collected_at < '2025-03-02'")
    assert materialize(resources, instance, partition_key="2025-03-01").success
    assert conn.execute("SELECT count(*) FROM client_daily_usage WHERE date = '2025-03-01'").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM system_metric_daily WHERE day = '2025-03-01'").fetchone()[0] == 0


def test_metadata_and_null_module_warning(erp_tables, resources, instance):
    conn = erp_tables
    _seed(conn)
    result = materialize(resources, instance, partition_key="2025-03-02")
    usage = result.asset_materializations_for_node("client_daily_usage")[0].metadata
    assert usage["events_read"] == dg.MetadataValue.int(2)
    assert usage["null_module_events"] == dg.MetadataValue.int(1)
    assert usage["rows_written"] == dg.MetadataValue.int(1)
    assert usage["dagster/row_count"] == dg.MetadataValue.int(1)
    assert usage["dagster/table_name"] == dg.MetadataValue.text("public.client_daily_usage")
    metric = result.asset_materializations_for_node("system_metric_daily")[0].metadata
    assert metric["samples_read"] == dg.MetadataValue.int(1)
    null_check = check_results(result)[USAGE_NULL_MODULE_CHECK]
    assert not null_check.passed and null_check.severity == dg.AssetCheckSeverity.WARN
    three = materialize(resources, instance, partition_key="2025-03-03")
    assert three.asset_materializations_for_node("client_daily_usage")[0].metadata[
        "uncategorized_by_type"
    ].value == {"login": 1}


@pytest.mark.parametrize(
    ("latency", "req", "err", "passed", "severity"),
    [
        (100, 1000, 1, True, None),  # 0.1 % errors, 100 ms
        (600, 1000, 1, False, dg.AssetCheckSeverity.WARN),  # latency at warning (500)
        (1000, 1000, 1, False, dg.AssetCheckSeverity.ERROR),  # latency exactly critical
        (100, 100, 2, False, dg.AssetCheckSeverity.WARN),  # 2 % errors: warning (1)
        (700, 100, 6, False, dg.AssetCheckSeverity.ERROR),  # 6 % errors: critical (5) wins over warning
    ],
)
def test_health_threshold_severities(erp_tables, resources, instance, latency, req, err, passed, severity):
    conn = erp_tables
    set_health_config(conn)
    insert_samples(conn, [(latency, None, req, err, datetime(2025, 3, 1, 6))])
    result = materialize(resources, instance, partition_key="2025-03-01")
    check = check_results(result)[METRIC_HEALTH_CHECK]
    assert check.passed is passed
    if severity:
        assert check.severity == severity
    assert check.metadata["avgLatencyMs"] == dg.MetadataValue.int(latency)
    assert check.metadata["latency_warning"] == dg.MetadataValue.float(500.0)
    assert check.metadata["errorRate_critical"] == dg.MetadataValue.float(5.0)


def test_thirty_partition_backfill_is_one_run(erp_tables, resources, instance):
    conn = erp_tables
    client = add_clients(conn, 1)[0]
    insert_events(
        conn,
        [(client, 1, 1, "view", datetime(2025, 4, 1) + timedelta(days=i, hours=i % 24)) for i in range(30)],
    )
    insert_samples(conn, [(10 * i, None, i, 0, datetime(2025, 4, 1) + timedelta(days=i)) for i in range(30)])
    for asset in ROLLUPS:
        assert asset.backfill_policy == dg.BackfillPolicy.single_run()
    result = materialize(
        resources,
        instance,
        tags={
            "dagster/asset_partition_range_start": "2025-04-01",
            "dagster/asset_partition_range_end": "2025-04-30",
        },
    )
    assert result.success
    assert len(instance.get_run_records()) == 1
    for key in ("client_daily_usage", "system_metric_daily"):
        assert len(instance.get_materialized_partitions(dg.AssetKey(key))) == 30
    assert conn.execute("SELECT count(*) FROM client_daily_usage").fetchone()[0] == 30
    assert conn.execute("SELECT count(*) FROM system_metric_daily").fetchone()[0] == 30
