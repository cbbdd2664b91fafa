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
