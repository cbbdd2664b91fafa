"""Every rollup, once: jobs, sensors, checks and retention iterate `ROLLUPS`.

Adding a rollup = one module declaring its `RollupSpec` and asset (see metric_daily.py) and one line here.
"""

from __future__ import annotations

import dagster as dg

from erp_pipelines.rollups.metric_daily import METRIC_DAILY, system_metric_daily
from erp_pipelines.rollups.spec import RollupSpec
from erp_pipelines.rollups.usage_daily import USAGE_DAILY, client_daily_usage

# (spec, asset) per rollup, in the order they run.
_ROLLUPS: tuple[tuple[RollupSpec, dg.AssetsDefinition], ...] = (
    (METRIC_DAILY, system_metric_daily),
    (USAGE_DAILY, client_daily_usage),
)

ROLLUPS: tuple[RollupSpec, ...] = tuple(spec for spec, _ in _ROLLUPS)
ROLLUP_ASSETS: tuple[dg.AssetsDefinition, ...] = tuple(asset for _, asset in _ROLLUPS)
RAW_TABLE_SPECS: tuple[dg.AssetSpec, ...] = tuple(spec.raw_spec for spec in ROLLUPS)


def rollup_named(aggregate_table: str) -> RollupSpec:
    """The spec of an aggregate table (== its asset key)."""
    return next(spec for spec in ROLLUPS if spec.aggregate_table == aggregate_table)
