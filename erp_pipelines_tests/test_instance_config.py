"""The shipped dagster.yaml, loaded by a real Dagster instance: the ERP database is protected by a pool."""

from pathlib import Path

import dagster as dg
import yaml

from erp_pipelines.definitions import defs

DAGSTER_YAML = Path(__file__).resolve().parent.parent / "dagster.yaml"


def test_dagster_yaml_limits_the_erp_pool_and_the_run_queue():
    config = yaml.safe_load(DAGSTER_YAML.read_text())
    assert config["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}
    with dg.instance_for_test(overrides={"concurrency": config["concurrency"]}) as instance:
        concurrency = instance.get_concurrency_config()
    assert concurrency.pool_config.default_pool_limit == 2
    assert concurrency.run_queue_config.max_concurrent_runs == 10
    assert [(t["key"], t["limit"]) for t in config["concurrency"]["runs"]["tag_concurrency_limits"]] == [
        ("dagster/backfill", 2)
    ]


def test_every_asset_that_touches_the_erp_database_is_in_the_erp_db_pool():
    graph = defs.resolve_asset_graph()
    materializable = [key for key in graph.get_all_asset_keys() if graph.get(key).is_materializable]
    assert len(materializable) == 6
    pools = {key.to_user_string(): graph.get(key).pools for key in materializable}
    assert all(pool == {"erp_db"} for pool in pools.values()), pools
