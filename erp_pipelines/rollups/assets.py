"""The rollup assets, as the rest of the project imports them: one name each, from their own modules.

Every rollup is an instance (erp_pipelines/defs/rollups/); the two original ones keep their tuned statements
in metric_daily.py and usage_daily.py; every rollup's asset is built by one machine (machine.py) from its
`RollupSpec` and the spec's body; the registry (registry.py) lists them. This module only re-exports the names other domains, tests and the benchmarks use.
"""

from erp_pipelines.rollups.metric_daily import (
    METRIC_HEALTH_CHECK,
    METRIC_RECONCILIATION_CHECK,
    SYSTEM_METRIC_SAMPLES,
    system_metric_daily,
)
from erp_pipelines.rollups.registry import RAW_TABLE_SPECS, ROLLUP_ASSETS, ROLLUPS
from erp_pipelines.rollups.spec import ERP_DB_POOL, GROUP, RETRY_POLICY
from erp_pipelines.rollups.usage_daily import (
    CATEGORIES,
    CLIENT_USAGE_EVENTS,
    DEFAULT_EVENT_CATEGORIES,
    USAGE_NULL_MODULE_CHECK,
    USAGE_RECONCILIATION_CHECK,
    category_params,
    client_daily_usage,
)

# Which raw table feeds which rollup (derived from the registry).
RAW_TABLE_OF = {spec.aggregate_table: spec.raw_table for spec in ROLLUPS}

__all__ = [
    "CATEGORIES",
    "CLIENT_USAGE_EVENTS",
    "DEFAULT_EVENT_CATEGORIES",
    "ERP_DB_POOL",
    "GROUP",
    "METRIC_HEALTH_CHECK",
    "METRIC_RECONCILIATION_CHECK",
    "RAW_TABLE_OF",
    "RAW_TABLE_SPECS",
    "RETRY_POLICY",
    "ROLLUPS",
    "ROLLUP_ASSETS",
    "SYSTEM_METRIC_SAMPLES",
    "USAGE_NULL_MODULE_CHECK",
    "USAGE_RECONCILIATION_CHECK",
    "category_params",
    "client_daily_usage",
    "system_metric_daily",
]
