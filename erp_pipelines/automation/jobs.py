"""Jobs of the rollups/retention domain.

`nightly_rollup_job` is partitioned by UTC day: one partition (yesterday) from the schedule, or a range
of partitions in ONE run (catch-up after an outage) thanks to the rollups' single-run backfill policy.
`retention_pruning` is unpartitioned and runs once per run, after both rollups and only if their blocking
reconciliation checks passed.

`rollup_refresh_job` re-materializes rollup partitions without retention: the late-data sensor's target.
"""

import dagster as dg

from erp_pipelines.partitions import DAILY_PARTITIONS
from erp_pipelines.rollups.registry import ROLLUPS

ROLLUP_KEYS = tuple(spec.asset_key for spec in ROLLUPS)
RETENTION_KEY = "retention_pruning"

nightly_rollup_job = dg.define_asset_job(
    "nightly_rollup_job",
    selection=dg.AssetSelection.assets(*ROLLUP_KEYS, RETENTION_KEY),
    partitions_def=DAILY_PARTITIONS,
    description="Yesterday's (or a range of missed days') rollups, then retention.",
)

rollup_refresh_job = dg.define_asset_job(
    "rollup_refresh_job",
    selection=dg.AssetSelection.assets(*ROLLUP_KEYS),
    partitions_def=DAILY_PARTITIONS,
    description="Re-materialize rollup partitions whose raw rows changed after they were rolled up.",
)

retention_job = dg.define_asset_job(
    "retention_job",
    selection=dg.AssetSelection.assets(RETENTION_KEY),
    description="Retention alone (it still deletes only days whose aggregates reconcile).",
)
