"""Real Dagster runs of the rollups over a partition range and of retention, with a test's database."""

from __future__ import annotations

from datetime import date

import dagster as dg

from erp_pipelines.resources import ErpDatabase
from erp_pipelines.retention.assets import retention_pruning
from erp_pipelines.rollups.assets import client_daily_usage, system_metric_daily

# Run tags of a single-run backfill over a partition range.
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def rollup_range(url: str, first: date, last: date, instance=None, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [system_metric_daily, client_daily_usage],
        resources={"erp_db": ErpDatabase(url=url)},
        instance=instance,
        tags={RANGE_START: str(first), RANGE_END: str(last)},
        **kwargs,
    )


def prune(url: str, instance=None, **config) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [retention_pruning],
        resources={"erp_db": ErpDatabase(url=url)},
        instance=instance,
        run_config={"ops": {"retention_pruning": {"config": config}}},
    )
