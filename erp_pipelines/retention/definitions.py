"""The retention domain: `retention_pruning`."""

import dagster as dg

from erp_pipelines.retention.assets import retention_pruning

defs = dg.Definitions(assets=[retention_pruning])
