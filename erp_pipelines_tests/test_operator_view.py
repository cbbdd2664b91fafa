"""What the operator sees is true: a schema sync that changes nothing leaves downstream assets Synced and
keeps the last applied plan on `erp_schema`'s overview.

Why: every no-op `make run` re-materialized `erp_schema` (and `system_health_config`) with a new data
version, so every rollup showed "Unsynced", and the real plan was only findable under Events, behind the
latest "Nothing to do".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest

from erp_pipelines.resources import ErpDatabase, PrismaMigrationsFolder
from erp_pipelines.rollups.registry import ROLLUP_ASSETS
from erp_pipelines.schema import versions
from erp_pipelines.schema.assets import erp_schema, prisma_migration_history, system_health_config
from erp_pipelines.schema.own_schema_asset import pipeline_state

SCHEMA_ASSETS = [erp_schema, prisma_migration_history, system_health_config, pipeline_state]


def _stale(instance: dg.DagsterInstance, key: str, partition: str) -> StaleStatus:
    from erp_pipelines.graph_doc import load_defs

    resolver = CachingStaleStatusResolver(instance, load_defs().resolve_asset_graph(), LoadingContextForTest(instance))
    status = resolver.get_status(dg.AssetKey(key), partition)
    return status


def test_a_no_op_sync_keeps_rollups_synced_and_the_last_applied_plan_visible(erp_url, instance):
    resources = {"erp_db": ErpDatabase(url=erp_url), "migrations": PrismaMigrationsFolder()}
    assert dg.materialize(SCHEMA_ASSETS, resources=resources, instance=instance).success
    day = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    assert dg.materialize(list(ROLLUP_ASSETS), partition_key=day, resources=resources, instance=instance).success
    for asset in ROLLUP_ASSETS:
        assert _stale(instance, asset.key.to_user_string(), day) == StaleStatus.FRESH

    second = dg.materialize(SCHEMA_ASSETS, resources=resources, instance=instance)  # plans nothing
    assert second.success
    metadata = second.asset_materializations_for_node("erp_schema")[0].metadata
    assert metadata["statements"].value == 0
    for asset in ROLLUP_ASSETS:
        assert _stale(instance, asset.key.to_user_string(), day) == StaleStatus.FRESH, asset.key
    # the plan that was applied (the first run's, 200+ statements) stays on the overview, with its time
    assert "CREATE TABLE" in metadata[versions.LAST_APPLIED_PLAN].value
    assert metadata[versions.LAST_APPLIED_AT].value[:4].isdigit()


def test_partitions_start_at_the_first_day_of_raw_data_not_at_2025(erp_tables, erp_url):
    """`make run` / `make dev` read the raw tables' first day once and pass it as ERP_ROLLUP_START_DATE.

    Why: the default 2025-01-01 gave the demo ~700 partitions, 672 of them Missing, for 30 days of data."""
    from erp_pipelines.partitions import START_DATE_ENV, daily_partitions, export_start_date
    from erp_pipelines_tests.support.erp_data import insert_events, insert_samples

    db = ErpDatabase(url=erp_url)
    planned = (datetime.now(UTC) - timedelta(days=30)).date()
    env: dict[str, str] = {}
    assert export_start_date(db, planned, env) == planned.isoformat()  # empty tables: the demo about to be made

    first = datetime(2026, 10, 5, 23, 59)
    insert_samples(erp_tables, [(100, 1.0, 10, 1, first), (100, 1.0, 10, 1, first + timedelta(days=3))])
    client = erp_tables.execute("SELECT id FROM clients LIMIT 1").fetchone()[0]
    insert_events(erp_tables, [(client, None, None, "view", first + timedelta(days=1))])
    env = {}
    assert export_start_date(db, None, env) == "2026-10-05"
    keys = daily_partitions(env[START_DATE_ENV]).get_partition_keys()
    assert keys[0] == "2026-10-05"
    assert len(keys) == (datetime.now(UTC).date() - first.date()).days  # up to yesterday, none before the data

    env = {START_DATE_ENV: "2026-01-01"}  # the operator's own value wins
    assert export_start_date(db, None, env) is None and env[START_DATE_ENV] == "2026-01-01"


def test_standing_failures_are_read_from_the_instance_latest_evaluation_per_day(instance):
    """A second `make run` that evaluates nothing still reports the ERROR that stands; a day whose latest
    evaluation passed is not reported."""
    from erp_pipelines.run_summary import standing_failures

    daily = dg.DailyPartitionsDefinition(start_date="2026-11-01")
    outcome = {"2026-11-02": False, "2026-11-03": False}

    @dg.asset(partitions_def=daily, check_specs=[dg.AssetCheckSpec("judged", asset="toy", partitions_def=daily)])
    def toy(context):
        day = context.partition_key
        return dg.MaterializeResult(check_results=[dg.AssetCheckResult(
            check_name="judged", passed=outcome.get(day, True), severity=dg.AssetCheckSeverity.ERROR,
            description=f"{day} judged")])

    for day in ("2026-11-02", "2026-11-03", "2026-11-04"):
        assert dg.materialize([toy], partition_key=day, instance=instance, raise_on_error=False)
    outcome["2026-11-03"] = True
    dg.materialize([toy], partition_key="2026-11-03", instance=instance)  # the day is fixed: no longer standing
    lines = standing_failures(instance, [dg.AssetCheckKey(dg.AssetKey("toy"), "judged")])
    assert [(line.target, line.partition, line.severity, line.standing) for line in lines] == [
        ("toy.judged", "2026-11-02", "ERROR", True)]

