"""The ledger on the real database: retention deletes a raw day only when the aggregate provably holds it.

One test per way issue 10 found to lose or corrupt data: late rows after pruning, an UPDATE or a DELETE by
the ERP before pruning, retention's snapshot taken before its lock, a writer outside UTC, uuid and text ids,
samples without a timestamp, request sums past 2^31, and a chunked backfill failing half-way.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg
import pytest

from erp_pipelines.dbwork import write_transaction
from erp_pipelines.rollups import steps, time_zone
from erp_pipelines.rollups.assets import system_metric_daily
from erp_pipelines.rollups.metric_daily import METRIC_DAILY, write_metric_day
from erp_pipelines.rollups.usage_daily import client_daily_usage
from erp_pipelines_tests.support.erp_data import add_clients, insert_events, insert_samples, set_health_config
from erp_pipelines_tests.support.ledger import ledger_rows, marks, pruned_days
from erp_pipelines_tests.support.reference import metric_reference, usage_reference
from erp_pipelines_tests.support.rollups import (
    ago,
    at,
    check_results,
    count,
    metric_rows,
    metrics_equal,
    prune,
    raw_events,
    raw_samples,
    retention_metadata,
    roll_up,
    roll_up_range,
    rows_on,
    usage_rows,
)

OLD = ago(20)  # older than every retention window used here
EVENTS_RETENTION = {"usage_event_retention_days": 7}


@pytest.fixture
def arranged(erp_tables, resources, instance) -> psycopg.Connection:
    """Samples and events on OLD, rolled up."""
    conn = erp_tables
    set_health_config(conn, metrics_days=7, aggregate_days=365)
    client = add_clients(conn, 1)[0]
    insert_samples(conn, [(100 + h, 0.5, 10 * h, h % 3, at(OLD, h)) for h in range(6)])
    insert_events(conn, [(client, 1 + h % 2, h, "view" if h % 2 else "edit", at(OLD, h)) for h in range(5)])
    roll_up(resources, instance, OLD)
    return conn


def test_late_rows_after_pruning_keep_the_aggregate_stay_raw_and_warn(arranged, resources, instance):
    conn = arranged
    assert prune(resources, instance, **EVENTS_RETENTION).success
    assert rows_on(conn, "client_usage_events", "occurred_at", OLD) == 0
    assert set(pruned_days(conn, "client_usage_events")) == {OLD}
    before = usage_rows(conn, OLD)
    # more late events than were pruned, from new clients and users
    newcomer = add_clients(conn, 3)[2]
    insert_events(conn, [(newcomer, 3, 100 + i, "view", at(OLD, 22)) for i in range(9)])
    # the refresh the sensor requests (no config), and an old-style config: neither rebuilds the day
    for config in (None, {"today": str(OLD + timedelta(days=1)), "usage_event_retention_days": 400}):
        result = roll_up(resources, instance, OLD, config=config, assets=[client_daily_usage])
        assert usage_rows(conn, OLD) == before
        late = check_results(result)[("client_daily_usage", steps.LATE_ROWS_CHECK)]
        assert not late.passed and late.severity == dg.AssetCheckSeverity.WARN
        assert late.metadata["late_rows_by_day"].value == {str(OLD): 9}
    again = prune(resources, instance, **EVENTS_RETENTION)
    assert again.success
    assert rows_on(conn, "client_usage_events", "occurred_at", OLD) == 9  # kept raw, never deleted
    assert retention_metadata(again)["late_rows_kept"]["client_usage_events"] == {str(OLD): 9}
    assert usage_rows(conn, OLD) == before


def test_update_of_a_raw_column_blocks_pruning_until_re_aggregated(arranged, resources, instance):
    conn = arranged
    conn.execute('UPDATE system_metric_samples SET "latencyMs" = 9000 WHERE collected_at = %s', (at(OLD, 3),))
    skipped = prune(resources, instance)
    assert skipped.success
    assert rows_on(conn, "system_metric_samples", "collected_at", OLD) == 6  # not pruned
    assert "changed since" in retention_metadata(skipped)["skipped_days"]["system_metric_samples"][str(OLD)]
    assert OLD in marks(conn, "system_metric_samples")  # refresh requested through the invalidation log
    roll_up(resources, instance, OLD)
    assert OLD not in marks(conn, "system_metric_samples")  # the rollup cleared the marks it saw
    expected = metric_reference(raw_samples(conn))[OLD]
    assert metrics_equal(metric_rows(conn)[OLD], expected)
    assert prune(resources, instance).success
    assert rows_on(conn, "system_metric_samples", "collected_at", OLD) == 0
    assert metrics_equal(metric_rows(conn)[OLD], expected)  # the aggregate holds the updated latency


def test_delete_by_the_erp_before_pruning_is_re_aggregated_then_pruned(arranged, resources, instance):
    conn = arranged
    conn.execute("DELETE FROM client_usage_events WHERE user_id = 0")  # a GDPR delete of one user
    conn.execute("DELETE FROM system_metric_samples WHERE collected_at = %s", (at(OLD, 5),))
    skipped = prune(resources, instance, **EVENTS_RETENTION)
    assert rows_on(conn, "client_usage_events", "occurred_at", OLD) == 4
    assert rows_on(conn, "system_metric_samples", "collected_at", OLD) == 5
    assert set(retention_metadata(skipped)["refresh_requested"]["client_usage_events"]) == {str(OLD)}
    roll_up(resources, instance, OLD)  # fewer raw rows than the aggregate: a correction, applied
    assert usage_rows(conn, OLD) == usage_reference(raw_events(conn))
    assert metrics_equal(metric_rows(conn)[OLD], metric_reference(raw_samples(conn))[OLD])
    assert prune(resources, instance, **EVENTS_RETENTION).success
    assert rows_on(conn, "client_usage_events", "occurred_at", OLD) == 0
    assert pruned_days(conn, "client_usage_events") == {OLD: 4}


def _waiting_for_advisory_lock(conn: psycopg.Connection) -> bool:
    return count(conn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") > 0


def test_retention_takes_its_snapshot_after_the_rollup_lock(arranged, erp_url, resources, instance):
    conn = arranged
    insert_samples(conn, [(700, 1.0, 70, 7, at(OLD, 23))])  # a late sample: the ledger no longer matches
    result: dict = {}
    with psycopg.connect(erp_url, autocommit=True) as rollup:
        rollup.execute("SELECT set_config('search_path', 'public', false)")
        rollup.execute("SELECT pg_advisory_lock(hashtext(%s))", (METRIC_DAILY.lock_key,))  # a rollup is running
        worker = threading.Thread(target=lambda: result.update(run=prune(resources, instance)))
        worker.start()
        deadline = time.monotonic() + 20
        while not _waiting_for_advisory_lock(conn):
            assert time.monotonic() < deadline, "retention never waited for the rollup lock"
            time.sleep(0.05)
        # the running rollup re-aggregates the day (ledger included) and commits while retention waits
        with write_transaction(rollup, METRIC_DAILY.lock_key):
            steps.roll_up_chunk(rollup, METRIC_DAILY, [OLD], write_metric_day, {"now": datetime(2026, 1, 1)})
        rollup.execute("SELECT pg_advisory_unlock(hashtext(%s))", (METRIC_DAILY.lock_key,))
        worker.join(60)
    assert result["run"].success
    # a snapshot older than the wait would have seen the old ledger and skipped the day
    assert rows_on(conn, "system_metric_samples", "collected_at", OLD) == 0
    assert pruned_days(conn, "system_metric_samples") == {OLD: 7}
    assert metric_rows(conn)[OLD][2] == sum(10 * h for h in range(6)) + 70


def test_a_writer_outside_utc_fails_the_time_zone_check(erp_tables, erp_url, resources, instance):
    conn = erp_tables
    db = conn.execute("SELECT current_database()").fetchone()[0]
    result = roll_up(resources, instance, OLD, assets=[system_metric_daily])
    assert check_results(result)[("system_metric_daily", time_zone.TIME_ZONE_CHECK)].passed
    conn.execute(psycopg.sql.SQL("ALTER DATABASE {} SET timezone TO 'America/New_York'").format(
        psycopg.sql.Identifier(db)))
    # what the app's DEFAULT now() stores from such a session: local time, hours behind UTC
    with psycopg.connect(erp_url, autocommit=True) as app:
        app.execute("INSERT INTO system_metric_samples (\"latencyMs\", \"reqCount\", \"errCount\") VALUES (1, 1, 0)")
    stored = count(conn, "SELECT max(collected_at) FROM system_metric_samples")
    assert stored < datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=3)
    failed = check_results(roll_up(resources, instance, OLD, assets=[system_metric_daily]))[
        ("system_metric_daily", time_zone.TIME_ZONE_CHECK)]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert "America/New_York" in failed.description and "ALTER DATABASE" in failed.description
    conn.execute(psycopg.sql.SQL("ALTER DATABASE {} SET timezone TO 'UTC'").format(psycopg.sql.Identifier(db)))
    # rows stamped in the future of UTC now: a writer east of UTC
    insert_samples(conn, [(1, 0.0, 1, 0, datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=3))])
    future = check_results(roll_up(resources, instance, OLD, assets=[system_metric_daily]))[
        ("system_metric_daily", time_zone.TIME_ZONE_CHECK)]
    assert not future.passed and future.metadata["future_rows"].value == 1


@pytest.mark.parametrize("id_type", ["integer", "uuid", "text"])
def test_retention_deletes_whatever_the_id_type_and_however_many_rows_share_a_timestamp(
    erp_tables, resources, instance, id_type
):
    conn = erp_tables
    set_health_config(conn, metrics_days=7, aggregate_days=365)
    if id_type == "uuid":
        conn.execute("ALTER TABLE client_usage_events ALTER COLUMN id DROP DEFAULT, "
                     "ALTER COLUMN id TYPE uuid USING gen_random_uuid(), ALTER COLUMN id SET DEFAULT gen_random_uuid()")
    elif id_type == "text":  # cuid-like text ids
        conn.execute("ALTER TABLE client_usage_events ALTER COLUMN id DROP DEFAULT, "
                     "ALTER COLUMN id TYPE text USING 'c' || md5(id::text), "
                     "ALTER COLUMN id SET DEFAULT 'c' || md5(random()::text)")
    client = add_clients(conn, 1)[0]
    same_moment = at(OLD, 12)  # 11 rows with one timestamp: more than a batch, they go by TID
    insert_events(conn, [(client, 1, i, "view", same_moment if i % 2 else at(OLD, i % 24, i % 60))
                         for i in range(23)])
    if id_type == "integer":  # one row far away in id space costs nothing
        conn.execute("SELECT setval('client_usage_events_id_seq', 50000000)")
        insert_events(conn, [(client, 2, 99, "edit", at(OLD, 23))])
    before_start = datetime(2024, 6, 1)  # before the first partition: never rolled up, never deleted
    insert_events(conn, [(client, 1, 1, "view", before_start)])
    total = 24 if id_type == "integer" else 23
    roll_up(resources, instance, OLD, assets=[client_daily_usage])
    result = prune(resources, instance, batch_size=5, **EVENTS_RETENTION)
    assert result.success
    md = retention_metadata(result)
    assert rows_on(conn, "client_usage_events", "occurred_at", OLD) == 0
    assert pruned_days(conn, "client_usage_events") == {OLD: total}
    # the walk by timestamp, 5 rows a batch: [00:00, 10:10) 5 rows, [10:10, 12:00) 1, the 11 rows at 12:00
    # by TID in 3 (5, 5, 1), [12:00, 22:22) 5, the rest 1 or 2
    assert md["delete_statements"] == 7
    assert md["skipped_days"]["client_usage_events"] == {}  # the day before the start is not "skipped"
    assert md["rows_before_start_date"]["client_usage_events"] == 1
    assert count(conn, "SELECT count(*) FROM client_usage_events") == 1


def test_samples_without_timestamp_are_counted_and_warned(erp_tables, resources, instance):
    conn = erp_tables
    insert_samples(conn, [(100, 1.0, 10, 1, at(OLD, 1)), (200, 1.0, 10, 1, None), (300, 1.0, 10, 1, None)])
    result = roll_up(resources, instance, OLD, assets=[system_metric_daily])
    check = check_results(result)[("system_metric_daily", "no_samples_without_timestamp")]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["samples_without_timestamp"].value == 2


def test_request_sums_past_2_31_and_a_chunked_backfill_failing_half_way_re_runs_idempotently(
    erp_tables, resources, instance
):
    conn = erp_tables
    days = [ago(40) + timedelta(days=i) for i in range(7)]
    for day in days:
        insert_samples(conn, [(100, 0.1, 1000, 1, at(day, h)) for h in range(3)])
    # day 5: three samples of a billion requests each, 3e9 > 2^31 - 1, in an int column
    insert_samples(conn, [(50, 0.1, 1_000_000_000, 0, at(days[4], 20 + i)) for i in range(3)])
    config = {"days_per_transaction": 2}
    failed = roll_up_range(resources, instance, days[0], days[-1], config=config, assets=[system_metric_daily])
    assert not failed.success
    failure = next(e for e in failed.all_events if e.is_step_failure)
    assert "does not fit its column" in failure.step_failure_data.error.cause.message
    assert "bigint" in failure.step_failure_data.error.cause.message.lower()
    # chunks [0,1] and [2,3] were committed, [4,5] rolled back, [6] never started
    assert sorted(metric_rows(conn)) == days[:4]
    assert sorted(ledger_rows(conn, "system_metric_daily")) == days[:4]
    # the fix the error names: widen the column; the re-run completes and equals the reference
    conn.execute('ALTER TABLE system_metric_daily ALTER COLUMN "reqCount" TYPE bigint')
    ok = roll_up_range(resources, instance, days[0], days[-1], config=config, assets=[system_metric_daily])
    assert ok.success
    expected = metric_reference(raw_samples(conn))
    assert all(metrics_equal(metric_rows(conn)[d], expected[d]) for d in days)
    assert metric_rows(conn)[days[4]][2] == 3_000_003_000
    md = ok.asset_materializations_for_node("system_metric_daily")[0].metadata
    assert "raw_fingerprints" not in md  # no O(N^2) metadata
    assert md["rows_inserted"].value == 3  # days 4..6 only: the committed chunks were right already
    before = (metric_rows(conn), ledger_rows(conn, "system_metric_daily"))
    again = roll_up_range(resources, instance, days[0], days[-1], config=config, assets=[system_metric_daily])
    assert again.asset_materializations_for_node("system_metric_daily")[0].metadata["rows_written"].value == 0
    assert (metric_rows(conn), ledger_rows(conn, "system_metric_daily")) == before


def test_a_future_today_is_refused_before_anything_is_deleted(arranged, resources, instance):
    result = prune(resources, instance, today=str(datetime.now(UTC).date() + timedelta(days=400)))
    assert not result.success
    assert rows_on(arranged, "system_metric_samples", "collected_at", OLD) == 6




def test_a_role_override_is_named_and_a_zone_our_own_options_set_is_not_judged(erp_tables, erp_url, instance):
    from urllib.parse import quote

    from erp_pipelines.resources import ErpDatabase

    conn = erp_tables
    role = conn.execute("SELECT current_user").fetchone()[0]
    conn.execute(psycopg.sql.SQL("ALTER ROLE {} SET timezone TO 'Asia/Tokyo'").format(psycopg.sql.Identifier(role)))
    try:
        tz = check_results(roll_up({"erp_db": ErpDatabase(url=erp_url)}, instance, OLD, assets=[system_metric_daily]))[
            ("system_metric_daily", time_zone.TIME_ZONE_CHECK)]
        assert not tz.passed and f"role {role}" in tz.description and "Asia/Tokyo" in tz.description
    finally:
        conn.execute(psycopg.sql.SQL("ALTER ROLE {} RESET timezone").format(psycopg.sql.Identifier(role)))
    # our own connection in another zone (libpq options): says nothing about the app's sessions
    ours = erp_url + ("&" if "?" in erp_url else "?") + "options=" + quote("-c TimeZone=America/Denver")
    tz = check_results(roll_up({"erp_db": ErpDatabase(url=ours)}, instance, OLD, assets=[system_metric_daily]))[
        ("system_metric_daily", time_zone.TIME_ZONE_CHECK)]
    assert tz.passed, tz.description
    assert tz.metadata["timezone"].value == "(set by this connection's options)"
