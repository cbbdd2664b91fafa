"""retention_pruning on a real PostgreSQL: only reconciled raw days go, bad settings delete nothing.

Days are arranged relative to the current UTC day (retention is "older than N days"), far from the
cutoffs, so nothing here depends on the time the test runs at.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import psycopg
import pytest

from erp_pipelines.rollups.assets import client_daily_usage, system_metric_daily
from erp_pipelines_tests.support.erp_data import add_clients, insert_events, insert_samples, set_health_config
from erp_pipelines_tests.support.rollups import prune

TODAY = datetime.now(UTC).date()


def ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour)


def count(conn: psycopg.Connection, query: str, *params) -> int:
    return conn.execute(query, params).fetchone()[0]


def samples_on(conn: psycopg.Connection, day: date) -> int:
    return count(
        conn,
        "SELECT count(*) FROM system_metric_samples WHERE collected_at >= %s AND collected_at < %s",
        at(day, 0),
        at(day + timedelta(days=1), 0),
    )


def events_on(conn: psycopg.Connection, day: date) -> int:
    return count(
        conn,
        "SELECT count(*) FROM client_usage_events WHERE occurred_at >= %s AND occurred_at < %s",
        at(day, 0),
        at(day + timedelta(days=1), 0),
    )


def roll_up(resources: dict, instance: dg.DagsterInstance, *days: date) -> None:
    for day in days:
        assert dg.materialize(
            [system_metric_daily, client_daily_usage],
            partition_key=str(day),
            resources=resources,
            instance=instance,
        ).success


@pytest.fixture
def arranged(erp_tables, resources, instance) -> psycopg.Connection:
    """Samples and events on days 20, 15, 12, 10 and 2 ago; aggregates of days 40 ago (to expire)."""
    conn = erp_tables
    set_health_config(conn, metrics_days=7, aggregate_days=30)
    client = add_clients(conn, 1)[0]
    for days in (20, 15, 12, 10, 2):
        day = ago(days)
        insert_samples(conn, [(100 + h, 0.5, 10 * h, h % 3, at(day, h)) for h in range(6)])
        insert_events(
            conn, [(client, 1 + h % 2, h, "view" if h % 2 else "edit", at(day, h)) for h in range(5)]
        )
    roll_up(resources, instance, ago(20), ago(15), ago(2))  # 12 and 10 days ago never rolled up
    conn.execute(
        'UPDATE system_metric_daily SET "reqCount" = "reqCount" + 1 WHERE day = %s', (at(ago(15), 0),)
    )
    conn.execute(
        "UPDATE client_daily_usage SET view_count = view_count + 1 WHERE date = %s AND module_id = 2",
        (ago(15),),
    )
    old = ago(40)
    conn.execute(
        'INSERT INTO system_metric_daily (day, "avgLatencyMs", "reqCount", "errCount") VALUES (%s, 1, 1, 0)',
        (at(old, 0),),
    )
    conn.execute(
        "INSERT INTO client_daily_usage (date, client_id, module_id, view_count) VALUES (%s, %s, 1, 3), (%s, %s, 2, 1)",
        (old, client, old, client),
    )
    return conn


def test_only_reconciled_old_raw_days_are_deleted(arranged, resources, instance):
    conn = arranged
    result = prune(resources, instance, batch_size=2)  # 6 samples a day: 3 PK-range batches per day
    assert result.success
    assert samples_on(conn, ago(20)) == 0  # rolled up and reconciled
    assert samples_on(conn, ago(15)) == 6  # aggregate disagrees with the samples
    assert samples_on(conn, ago(12)) == 6  # never rolled up
    assert samples_on(conn, ago(10)) == 6
    assert samples_on(conn, ago(2)) == 6  # recent
    assert all(events_on(conn, ago(d)) == 5 for d in (20, 15, 12, 10, 2))  # usage events kept by default
    # aggregates: the day 40 ago is gone (whole day), the others stay
    assert count(conn, "SELECT count(*) FROM system_metric_daily WHERE day < %s", at(ago(30), 0)) == 0
    assert count(conn, "SELECT count(*) FROM client_daily_usage WHERE date < %s", ago(30)) == 0
    assert count(conn, "SELECT count(*) FROM system_metric_daily") == 3
    md = result.asset_materializations_for_node("retention_pruning")[0].metadata
    assert md["deleted_system_metric_samples"] == dg.MetadataValue.int(6)
    assert md["deleted_client_usage_events"] == dg.MetadataValue.int(0)
    assert md["deleted_system_metric_daily"] == dg.MetadataValue.int(1)
    assert md["deleted_client_daily_usage"] == dg.MetadataValue.int(2)
    assert md["days_skipped"] == dg.MetadataValue.int(3)
    skipped = md["skipped_days"].value["system_metric_samples"]
    assert set(skipped) == {str(ago(15)), str(ago(12)), str(ago(10))}
    assert "not rolled up" in skipped[str(ago(12))]
    # the pruned day's aggregate survives a re-materialization of its partition
    before = conn.execute("SELECT * FROM system_metric_daily ORDER BY day").fetchall()
    roll_up(resources, instance, ago(20))
    assert conn.execute("SELECT * FROM system_metric_daily ORDER BY day").fetchall() == before
    # running again deletes nothing more
    again = prune(resources, instance)
    assert again.asset_materializations_for_node("retention_pruning")[0].metadata[
        "deleted_system_metric_samples"
    ] == dg.MetadataValue.int(0)


def test_usage_events_pruned_only_when_configured_and_reconciled(arranged, resources, instance):
    conn = arranged
    result = prune(resources, instance, usage_event_retention_days=7, batch_size=3)
    assert result.success
    assert events_on(conn, ago(20)) == 0
    assert events_on(conn, ago(15)) == 5  # client_daily_usage disagrees
    assert events_on(conn, ago(12)) == 5 and events_on(conn, ago(10)) == 5  # not rolled up
    assert events_on(conn, ago(2)) == 5
    md = result.asset_materializations_for_node("retention_pruning")[0].metadata
    assert md["deleted_client_usage_events"] == dg.MetadataValue.int(5)
    assert set(md["skipped_days"].value["client_usage_events"]) == {str(ago(15)), str(ago(12)), str(ago(10))}


def _totals(conn: psycopg.Connection) -> tuple[int, ...]:
    return tuple(
        count(conn, query)
        for query in (
            "SELECT count(*) FROM system_metric_samples",
            "SELECT count(*) FROM client_usage_events",
            "SELECT count(*) FROM system_metric_daily",
            "SELECT count(*) FROM client_daily_usage",
        )
    )


@pytest.mark.parametrize(
    ("setting", "config", "message"),
    [
        ("DELETE FROM system_health_config", {}, "no retention configuration"),
        ('UPDATE system_health_config SET "metricsRetentionDays" = 0', {}, "metricsRetentionDays"),
        ('UPDATE system_health_config SET "metricsRetentionDays" = NULL', {}, "metricsRetentionDays"),
        ('UPDATE system_health_config SET "aggregateRetentionDays" = 5', {}, "aggregateRetentionDays"),
        ('UPDATE system_health_config SET "aggregateRetentionDays" = 100000', {}, "aggregateRetentionDays"),
        ("SELECT 1", {"usage_event_retention_days": 0}, "usage_event_retention_days"),
        ("SELECT 1", {"usage_event_retention_days": 400}, "usage_event_retention_days"),
    ],
)
def test_bad_retention_config_deletes_nothing(arranged, resources, instance, setting, config, message):
    conn = arranged
    conn.execute(setting)
    before = _totals(conn)
    result = prune(resources, instance, **config)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    cause = failure.step_failure_data.error.cause
    assert cause.cls_name == "ErpPipelinesError"
    assert "nothing is deleted" in cause.message and message in cause.message
    assert _totals(conn) == before
