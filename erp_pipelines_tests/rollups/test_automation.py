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
from erp_pipelines_tests.support.erp_data import add_clients, insert_events, insert_samples, set_health_config
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
        [system_metric_daily, client_daily_usage],
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
    # the next night only yesterday is left
    request = nightly_rollup_schedule(
        dg.build_schedule_context(instance=instance, scheduled_execution_time=tick(base + timedelta(days=11)))
    )
    assert request.partition_key == str(base + timedelta(days=10))


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


def test_late_data_sensor_rematerializes_exactly_the_changed_days(erp_tables, erp_url, resources, instance):
    conn = erp_tables
    d1, d2 = ago(10), ago(9)
    clients = seed_days(conn, d1, 2)
    materialize_days(resources, instance, d1, d2)
    first = late_data_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert first.run_requests == []  # fingerprints match what the rollup saw
    # late rows: one for d1 (already rolled up), one for today (incomplete), one for a day never rolled up
    insert_events(conn, [(clients[0], 2, 99, "edit", at(d1, 23))])
    insert_events(
        conn, [(clients[0], 2, 99, "edit", at(TODAY, 0)), (clients[1], 1, 5, "view", at(ago(30), 5))]
    )
    second = late_data_sensor(
        dg.build_sensor_context(instance=instance, resources=resources, cursor=first.cursor)
    )
    assert [(r.partition_key, r.asset_selection) for r in second.run_requests] == [
        (str(d1), [dg.AssetKey("client_daily_usage")])
    ]
    job = build_defs(ErpDatabase(url=erp_url)).resolve_job_def("rollup_refresh_job")
    request = second.run_requests[0]
    assert job.execute_in_process(
        instance=instance, partition_key=request.partition_key, asset_selection=request.asset_selection
    ).success
    raw = conn.execute(
        "SELECT client_id, module_id, user_id, event_type, occurred_at FROM client_usage_events "
        "WHERE occurred_at >= %s AND occurred_at < %s",
        (at(d1), at(d2 + timedelta(days=1))),
    ).fetchall()
    rows = conn.execute(
        "SELECT date, client_id, module_id, view_count, create_count, edit_count, delete_count, active_users "
        "FROM client_daily_usage"
    ).fetchall()
    assert {(d, c, m): tuple(v) for d, c, m, *v in rows} == usage_reference(raw)
    third = late_data_sensor(
        dg.build_sensor_context(instance=instance, resources=resources, cursor=second.cursor)
    )
    assert third.run_requests == []
    # a late metric sample is noticed too
    insert_samples(conn, [(999, None, 1, 0, at(d2, 22))])
    fourth = late_data_sensor(
        dg.build_sensor_context(instance=instance, resources=resources, cursor=third.cursor)
    )
    assert [(r.partition_key, r.asset_selection) for r in fourth.run_requests] == [
        (str(d2), [dg.AssetKey("system_metric_daily")])
    ]


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
        [system_metric_daily, client_daily_usage, *ROLLUP_FRESHNESS_CHECKS],
        selection=dg.AssetSelection.checks(*ROLLUP_FRESHNESS_CHECKS),
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )
    return result.get_asset_check_evaluations()


def test_freshness_checks_fail_without_and_pass_with_the_recent_partitions(erp_tables, resources, instance):
    """Whatever the time of day: the expected partition is yesterday (after 03:00 UTC) or the day before."""
    evaluations = _freshness(resources, instance)
    assert len(evaluations) == 2 and not any(e.passed for e in evaluations)
    materialize_days(resources, instance, ago(2), ago(1))
    evaluations = _freshness(resources, instance)
    assert len(evaluations) == 2 and all(e.passed for e in evaluations)
