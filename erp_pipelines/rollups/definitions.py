"""The rollups domain: the rollup instances of the defs folder (their raw tables and assets, built by the
components themselves) and their freshness checks."""

import dagster as dg

from erp_pipelines.rollups.checks import build_freshness_checks
from erp_pipelines.rollups.component import build_tree_defs
from erp_pipelines.rollups.registry import ROLLUP_ASSETS, ROLLUP_TREE

ROLLUP_FRESHNESS_CHECKS = build_freshness_checks(ROLLUP_ASSETS)

defs = dg.Definitions.merge(build_tree_defs(ROLLUP_TREE), dg.Definitions(asset_checks=[*ROLLUP_FRESHNESS_CHECKS]))
