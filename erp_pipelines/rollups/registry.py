"""Every rollup, once: jobs, sensors, checks and retention iterate `ROLLUPS`.

The rollups are the `DailyRollup` instances of the defs folder (erp_pipelines/defs/rollups/<name>/defs.yaml,
rollups/component.py), loaded once per process: adding a rollup is one YAML file (docs/rollups.md).
"""

from __future__ import annotations

import dagster as dg

from erp_pipelines.rollups.component import DailyRollup, component_tree, load_rollups
from erp_pipelines.rollups.spec import RollupSpec

ROLLUP_TREE = component_tree()
ROLLUP_COMPONENTS: tuple[DailyRollup, ...] = tuple(load_rollups(ROLLUP_TREE))

ROLLUPS: tuple[RollupSpec, ...] = tuple(c.spec for c in ROLLUP_COMPONENTS)
ROLLUP_ASSETS: tuple[dg.AssetsDefinition, ...] = tuple(c.asset for c in ROLLUP_COMPONENTS)
RAW_TABLE_SPECS: tuple[dg.AssetSpec, ...] = tuple(spec.raw_spec for spec in ROLLUPS)


def rollup_named(aggregate_table: str) -> RollupSpec:
    """The spec of an aggregate table (== its asset key)."""
    return next(spec for spec in ROLLUPS if spec.aggregate_table == aggregate_table)
