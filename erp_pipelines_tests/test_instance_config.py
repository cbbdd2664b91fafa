"""The shipped dagster.yaml, loaded by a real Dagster instance: the ERP database is protected by a pool."""

from pathlib import Path

import dagster as dg
import yaml

from erp_pipelines.definitions import defs

DAGSTER_YAML = Path(__file__).resolve().parent.parent / "dagster.yaml"


def test_dagster_yaml_limits_the_erp_pool_and_the_run_queue():
    config = yaml.safe_load(DAGSTER_YAML.read_text())
    with dg.instance_for_test(overrides={"concurrency": config["concurrency"]}) as instance:
        concurrency = instance.get_concurrency_config()
    assert concurrency.pool_config.default_pool_limit == 2
    assert concurrency.run_queue_config.max_concurrent_runs == 10
    assert [(t["key"], t["limit"]) for t in config["concurrency"]["runs"]["tag_concurrency_limits"]] == [
        ("dagster/backfill", 2)
    ]


def test_dagster_storage_is_configured_from_parts_with_the_password_as_its_own_setting():
    storage = yaml.safe_load(DAGSTER_YAML.read_text())["storage"]["postgres"]
    assert "postgres_url" not in storage  # a URL holds the password, and an error could print it
    assert {key: value for key, value in storage["postgres_db"].items() if key != "params"} == {
        "username": {"env": "DAGSTER_PG_USERNAME"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "port": {"env": "DAGSTER_PG_PORT"},
        "db_name": {"env": "DAGSTER_PG_DB"},
    }


def test_every_asset_that_touches_the_erp_database_is_in_the_erp_db_pool():
    graph = defs.resolve_asset_graph()
    materializable = [key for key in graph.get_all_asset_keys() if graph.get(key).is_materializable]
    assert {key.to_user_string() for key in materializable} == {
        "erp_schema",
        "pipeline_state",
        "prisma_migration_history",
        "system_health_config",
        "system_metric_daily",
        "client_daily_usage",
        "rate_limit_violations_daily",  # the declared third rollup (erp_pipelines/defs/rollups/)
        "retention_pruning",
    }
    pools = {key.to_user_string(): graph.get(key).pools for key in materializable}
    assert all(pool == {"erp_db"} for pool in pools.values()), pools
