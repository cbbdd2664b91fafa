"""The rollups domain: raw-table specs, the two daily rollups and their freshness checks."""

import dagster as dg

from erp_pipelines.rollups.checks import build_freshness_checks
from erp_pipelines.rollups.registry import RAW_TABLE_SPECS, ROLLUP_ASSETS

ROLLUP_FRESHNESS_CHECKS = build_freshness_checks(ROLLUP_ASSETS)

defs = dg.Definitions(assets=[*RAW_TABLE_SPECS, *ROLLUP_ASSETS], asset_checks=[*ROLLUP_FRESHNESS_CHECKS])
