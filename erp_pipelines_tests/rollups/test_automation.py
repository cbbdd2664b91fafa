"""Schedule, catch-up, sensors and the nightly job, evaluated against a real Dagster instance and database.

Partition days are arranged relative to the current UTC day so retention (which runs in the nightly job)
keeps what the assertions look at; schedule ticks are given explicit scheduled times.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import psycopg
import pytest

from erp_pipelines.automation.schedules import NIGHTLY_CRON, nightly_rollup_schedule
from erp_pipelines.automation.sensors import (
    DRY_RUN_CONFIG,
    erp_raw_tables_sensor,
    late_data_sensor,
    migrations_folder_sensor,
)
from erp_pipelines.defs_factory import build_defs
from erp_pipelines.resources import ErpDatabase, PrismaMigrationsFolder
from erp_pipelines.rollups.assets import USAGE_RECONCILIATION_CHECK, client_daily_usage, system_metric_daily
from erp_pipelines.rollups.registry import ROLLUP_ASSETS
from erp_pipelines_tests.support.capture import install_capture, marks, run_request
from erp_pipelines_tests.support.erp_data import add_clients, insert_events, insert_samples, set_health_config
from erp_pipelines_tests.support.ledger import record_pruned_day
from erp_pipelines_tests.support.raw_rows import at
from erp_pipelines_tests.support.reference import usage_reference
from erp_pipelines_tests.support.runs import RANGE_END, RANGE_START

TODAY = datetime.now(UTC).date()


def ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def tick(day: date) -> datetime:
    """The schedule's 02:00 UTC tick on `day`."""
    return datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)


def materialize_days(resources: dict, instance: dg.DagsterInstance, first: date, last: date) -> None:
    assert dg.materialize(
        list(ROLLUP_ASSETS),  # every rollup instance: the schedule looks at all of them
        resources=resources,
        instance=instance,
        tags={RANGE_START: str(first), RANGE_END: str(last)},
    ).success


def seed_days(conn: psycopg.Connection, first: date, n: int) -> list:
    clients = add_clients(conn, 2)
    for i in range(n):
        day = first + timedelta(days=i)
        insert_events(conn, [(clients[h % 2], 1 + h % 3, h, "view", at(day, h)) for h in range(4)])
        insert_samples(conn, [(100 + h, None, 10, 1, at(day, h)) for h in range(3)])
    return clients


def test_definitions_load_with_the_other_domains(erp_url):
    defs = build_defs(ErpDatabase(url=erp_url))
    dg.Definitions.validate_loadable(defs)
    job = defs.resolve_job_def("nightly_rollup_job")
    assert {"system_metric_daily", "client_daily_usage", "retention_pruning"} <= set(job.graph.node_dict)
    assert nightly_rollup_schedule.cron_schedule == NIGHTLY_CRON == "0 2 * * *"
    assert nightly_rollup_schedule.execution_timezone == "UTC"
    checks = {key.name for key in defs.resolve_asset_graph().asset_check_keys}
    assert {
        "totals_match_samples",
        "health_thresholds",
        "counts_match_events",
        "no_events_without_module",
    } <= checks
    # the migrations sensor's dry-run config is valid for the schema domain's job
    assert dg.validate_run_config(defs.resolve_job_def("schema_sync_job"), DRY_RUN_CONFIG)


def test_schedule_at_two_utc_asks_for_yesterday(instance):
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=tick(date(2025, 3, 10)))
    request = nightly_rollup_schedule(context)
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == "2025-03-09"
    assert RANGE_START not in request.tags


def test_outage_catch_up_materializes_the_missed_days_in_one_run(erp_tables, erp_url, resources, instance):
    conn = erp_tables
    set_health_config(conn, metrics_days=365, aggregate_days=1825)
    base = ago(20)
    seed_days(conn, base, 11)
    materialize_days(resources, instance, base, base + timedelta(days=4))  # up to base+4, then an outage
    runs_before = len(instance.get_run_records())
    # the first tick after the outage (on base+10) asks for base+5 .. base+9 in one request
    request = nightly_rollup_schedule(
        dg.build_schedule_context(instance=instance, scheduled_execution_time=tick(base + timedelta(days=10)))
    )
    assert request.partition_key is None
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == (
        str(base + timedelta(days=5)),
        str(base + timedelta(days=9)),
    )
    job = build_defs(ErpDatabase(url=erp_url)).resolve_job_def("nightly_rollup_job")
    result = job.execute_in_process(instance=instance, tags=request.tags)
    assert result.success
    assert len(instance.get_run_records()) == runs_before + 1
    for key in ("system_metric_daily", "client_daily_usage"):
        materialized = instance.get_materialized_partitions(dg.AssetKey(key))
        assert {str(base + timedelta(days=i)) for i in range(10)} <= materialized
    assert result.asset_materializations_for_node("retention_pruning")
    # the next night only yesterday is left, plus the lookback's re-roll of the 2 days before it
    request = nightly_rollup_schedule(
        dg.build_schedule_context(instance=instance, scheduled_execution_time=tick(base + timedelta(days=11)))
    )
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == (
        str(base + timedelta(days=8)),
        str(base + timedelta(days=10)),
    )


def test_catch_up_does_not_repeat_days_of_a_run_in_flight(erp_tables, erp_url, resources, instance):
    conn = erp_tables
    base = ago(20)
    seed_days(conn, base, 3)
    materialize_days(resources, instance, base, base)
    job = build_defs(ErpDatabase(url=erp_url)).resolve_job_def("nightly_rollup_job")
    queued_until = base + timedelta(days=5)
    instance.create_run_for_job(
        job_def=job,
        status=dg.DagsterRunStatus.NOT_STARTED,  # submitted, not yet running
        tags={RANGE_START: str(base + timedelta(days=1)), RANGE_END: str(queued_until)},
    )
    request = nightly_rollup_schedule(
        dg.build_schedule_context(instance=instance, scheduled_execution_time=tick(base + timedelta(days=7)))
    )
    assert request.partition_key == str(base + timedelta(days=6))


def late_data(resources: dict, instance: dg.DagsterInstance) -> list[tuple[str | None, list]]:
    """One late_data_sensor tick: (partition, asset selection) of each run it asks for."""
    result = late_data_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    return [(r.partition_key, r.asset_selection) for r in result.run_requests]


def usage_matches_reference(conn: psycopg.Connection, first: date, last: date) -> bool:
    raw = conn.execute(
        "SELECT client_id, module_id, user_id, event_type, occurred_at FROM client_usage_events "
        "WHERE occurred_at >= %s AND occurred_at < %s",
        (at(first), at(last + timedelta(days=1))),
    ).fetchall()
    rows = conn.execute(
        "SELECT date, client_id, module_id, view_count, create_count, edit_count, delete_count, active_users "
        "FROM client_daily_usage WHERE date BETWEEN %s AND %s",
        (first, last),
    ).fetchall()
    return {(d, c, m): tuple(v) for d, c, m, *v in rows} == usage_reference(raw)


USAGE = [dg.AssetKey("client_daily_usage")]
METRICS = [dg.AssetKey("system_metric_daily")]


def test_late_data_sensor_refreshes_exactly_the_changed_days_and_the_rollup_clears_their_marks(
    erp_tables, erp_url, resources, instance
):
    conn = erp_tables
    install_capture(conn)
    d1, d2 = ago(10), ago(9)
    clients = seed_days(conn, d1, 2)
    materialize_days(resources, instance, d1, d2)
    assert marks(conn) == []  # each rollup cleared the marks its snapshot saw
    assert late_data(resources, instance) == []
    # an in-place UPDATE of a raw column on d1, a row for today (incomplete), one for a day never rolled up
    conn.execute(
        "UPDATE client_usage_events SET event_type = 'edit' "
        "WHERE id = (SELECT min(id) FROM client_usage_events WHERE occurred_at >= %s AND occurred_at < %s)",
        (at(d1), at(d2)),
    )
    insert_events(conn, [(clients[0], 2, 99, "edit", at(TODAY, 0)), (clients[1], 1, 5, "view", at(ago(30), 5))])
    assert late_data(resources, instance) == [(str(d1), USAGE)]
    request = late_data_sensor(dg.build_sensor_context(instance=instance, resources=resources)).run_requests[0]
    assert run_request(erp_url, instance, request).success
    assert usage_matches_reference(conn, d1, d2)
    assert marks(conn) == [("client_usage_events", ago(30)), ("client_usage_events", TODAY)]
    assert late_data(resources, instance) == []
    # a DELETE by the ERP (dedup, GDPR) of a metric sample
    conn.execute("DELETE FROM system_metric_samples WHERE collected_at = %s", (at(d2, 1),))
    assert late_data(resources, instance) == [(str(d2), METRICS)]
    # a row moved to another day: both days, each with its own run
    conn.execute("UPDATE client_usage_events SET occurred_at = %s WHERE occurred_at = %s", (at(d2, 5), at(d1, 3)))
    assert late_data(resources, instance) == [(str(d1), USAGE), (str(d2), USAGE + METRICS)]


def test_a_pruned_day_is_not_refreshed_its_late_rows_stay_raw(erp_tables, erp_url, resources, instance):
    """Retention's pruned days keep their aggregate (late rows stay raw, retention reports them): a mark for
    such a day asks for nothing."""
    conn = erp_tables
    install_capture(conn)
    d1, d2 = ago(10), ago(9)
    clients = seed_days(conn, d1, 2)
    materialize_days(resources, instance, d1, d2)
    record_pruned_day(conn, "client_usage_events", d1, "client_daily_usage")
    insert_events(conn, [(clients[0], 2, 7, "view", at(d1, 22)), (clients[0], 2, 7, "view", at(d2, 22))])
    assert late_data(resources, instance) == [(str(d2), USAGE)]


def test_a_row_committed_after_the_days_first_rollup_read_it_is_refreshed(erp_tables, erp_url, resources, instance):
    """Out-of-order commit: the writer inserts before the day's first rollup takes its snapshot and commits
    after it; the rollup neither counts the row nor clears its mark, so the sensor asks for the day."""
    conn = erp_tables
    install_capture(conn)
    d1 = ago(10)
    clients = seed_days(conn, d1, 1)
    with psycopg.connect(erp_url) as writer:
        insert_events(writer, [(clients[0], 3, 42, "delete", at(d1, 20))])
        materialize_days(resources, instance, d1, d1)
        writer.commit()
    assert marks(conn) == [("client_usage_events", d1)]
    request = late_data_sensor(dg.build_sensor_context(instance=instance, resources=resources)).run_requests[0]
    assert (request.partition_key, request.asset_selection) == (str(d1), USAGE)
    assert run_request(erp_url, instance, request).success
    assert usage_matches_reference(conn, d1, d1)
    assert marks(conn) == []


def test_a_failed_refresh_is_requested_again_and_not_while_one_is_queued(erp_tables, erp_url, resources, instance):
    conn = erp_tables
    install_capture(conn)
    d1 = ago(10)
    clients = seed_days(conn, d1, 1)
    materialize_days(resources, instance, d1, d1)
    insert_events(conn, [(clients[0], 2, 7, "view", at(d1, 22))])
    conn.execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'aggregate table unavailable'; END $$"
    )
    conn.execute("CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON client_daily_usage EXECUTE FUNCTION refuse()")
    first = late_data_sensor(dg.build_sensor_context(instance=instance, resources=resources)).run_requests
    assert [(r.partition_key, r.asset_selection) for r in first] == [(str(d1), USAGE)]
    assert not run_request(erp_url, instance, first[0], raise_on_error=False).success
    assert marks(conn) == [("client_usage_events", d1)]  # the failed run rolled back: the marks stay
    again = late_data_sensor(dg.build_sensor_context(instance=instance, resources=resources)).run_requests
    assert [(r.partition_key, r.asset_selection) for r in again] == [(str(d1), USAGE)]
    assert again[0].run_key != first[0].run_key and again[0].tags["erp/late_data_attempt"] == "2"
    # while that request's run is queued, the day is not asked for again
    job = build_defs(ErpDatabase(url=erp_url)).resolve_job_def("rollup_refresh_job")
    queued = instance.create_run_for_job(
        job_def=job, status=dg.DagsterRunStatus.NOT_STARTED, tags={**again[0].tags, "dagster/partition": str(d1)}
    )
    assert late_data(resources, instance) == []
    instance.delete_run(queued.run_id)
    conn.execute("DROP TRIGGER refuse ON client_daily_usage")
    assert run_request(erp_url, instance, again[0]).success
    assert usage_matches_reference(conn, d1, d1) and marks(conn) == []
    assert late_data(resources, instance) == []


def test_migrations_sensor_requests_a_dry_run_on_change(migrations_copy, instance):
    resources = {"migrations": PrismaMigrationsFolder(path=str(migrations_copy))}
    first = migrations_folder_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert [r.run_config for r in first.run_requests] == [DRY_RUN_CONFIG]
    unchanged = migrations_folder_sensor(
        dg.build_sensor_context(instance=instance, resources=resources, cursor=first.cursor)
    )
    assert isinstance(unchanged, dg.SkipReason)
    new = migrations_copy / "20260101_0000_add_notes"
    new.mkdir()
    (new / "migration.sql").write_text('CREATE TABLE "notes" ("id" SERIAL PRIMARY KEY);\n')
    added = migrations_folder_sensor(
        dg.build_sensor_context(instance=instance, resources=resources, cursor=first.cursor)
    )
    assert [r.run_config for r in added.run_requests] == [DRY_RUN_CONFIG]
    (new / "migration.sql").write_text('CREATE TABLE "notes" ("id" BIGSERIAL PRIMARY KEY);\n')
    changed = migrations_folder_sensor(
        dg.build_sensor_context(instance=instance, resources=resources, cursor=added.cursor)
    )
    assert len(changed.run_requests) == 1
    assert (
        changed.run_requests[0].tags["erp/migrations_digest"]
        != added.run_requests[0].tags["erp/migrations_digest"]
    )


def test_raw_tables_are_observed(erp_tables, resources, instance):
    conn = erp_tables
    seed_days(conn, date(2025, 3, 1), 2)
    result = erp_raw_tables_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    observed = {e.asset_key.path[-1]: e.metadata for e in result.asset_events}
    assert observed["client_usage_events"]["dagster/row_count"] == dg.MetadataValue.int(8)
    assert observed["system_metric_samples"]["dagster/row_count"] == dg.MetadataValue.int(6)
    assert observed["system_metric_samples"]["newest_row_at"].value.startswith("2025-03-02 02:00")


def test_failed_reconciliation_blocks_retention_in_the_nightly_job(erp_tables, erp_url, instance):
    """A rollup that does not reconcile (here a trigger corrupts its rows) stops retention in that run."""
    conn = erp_tables
    set_health_config(conn, metrics_days=7, aggregate_days=30)
    day = ago(20)
    seed_days(conn, day, 1)
    conn.execute(
        "CREATE FUNCTION corrupt() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN NEW.view_count := NEW.view_count + 1; RETURN NEW; END $$"
    )
    conn.execute(
        "CREATE TRIGGER corrupt BEFORE INSERT ON client_daily_usage FOR EACH ROW EXECUTE FUNCTION corrupt()"
    )
    job = build_defs(ErpDatabase(url=erp_url)).resolve_job_def("nightly_rollup_job")
    result = job.execute_in_process(instance=instance, partition_key=str(day), raise_on_error=False)
    assert not result.success
    check = {e.check_name: e for e in result.get_asset_check_evaluations()}[USAGE_RECONCILIATION_CHECK]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert not result.asset_materializations_for_node("retention_pruning")
    assert conn.execute("SELECT count(*) FROM system_metric_samples").fetchone()[0] == 3


@pytest.mark.parametrize("asset", [system_metric_daily, client_daily_usage])
def test_rollups_use_the_erp_db_pool(asset):
    assert asset.op.pool == "erp_db"


def _freshness(resources: dict, instance: dg.DagsterInstance) -> list[dg.AssetCheckEvaluation]:
    from erp_pipelines.rollups.definitions import ROLLUP_FRESHNESS_CHECKS

    result = dg.materialize(
        [*ROLLUP_ASSETS, *ROLLUP_FRESHNESS_CHECKS],
        selection=dg.AssetSelection.checks(*ROLLUP_FRESHNESS_CHECKS),
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )
    return result.get_asset_check_evaluations()


def test_freshness_checks_fail_without_and_pass_with_the_recent_partitions(erp_tables, resources, instance):
    """Whatever the time of day: the expected partition is yesterday (after 03:00 UTC) or the day before."""
    evaluations = _freshness(resources, instance)
    assert len(evaluations) == len(ROLLUP_ASSETS) and not any(e.passed for e in evaluations)
    materialize_days(resources, instance, ago(2), ago(1))
    evaluations = _freshness(resources, instance)
    assert len(evaluations) == len(ROLLUP_ASSETS) and all(e.passed for e in evaluations)


def test_nightly_lookback_re_rolls_the_last_two_days_and_folds_in_an_uncaptured_change(
    erp_tables, erp_url, resources, instance, monkeypatch
):
    """Change capture off (no trigger): an UPDATE of yesterday-1 is still folded in by the next nightly run."""
    conn = erp_tables
    set_health_config(conn, metrics_days=365, aggregate_days=1825)
    yesterday = ago(1)
    seed_days(conn, ago(3), 3)
    materialize_days(resources, instance, ago(3), ago(2))
    conn.execute(
        "UPDATE client_usage_events SET event_type = 'delete' WHERE occurred_at = %s", (at(ago(2), 1),)
    )
    request = nightly_rollup_schedule(
        dg.build_schedule_context(instance=instance, scheduled_execution_time=tick(TODAY))
    )
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == (str(ago(3)), str(yesterday))
    assert request.tags["erp/trigger"] == "nightly"
    job = build_defs(ErpDatabase(url=erp_url)).resolve_job_def("nightly_rollup_job")
    assert job.execute_in_process(instance=instance, tags=request.tags).success
    assert usage_matches_reference(conn, ago(3), yesterday)
    monkeypatch.setenv("ERP_ROLLUP_LOOKBACK_DAYS", "0")
    request = nightly_rollup_schedule(
        dg.build_schedule_context(instance=instance, scheduled_execution_time=tick(TODAY + timedelta(days=1)))
    )
    assert request.partition_key == str(TODAY)
