"""The `system_health_config` singleton: the defaults from the ERP's own repair, and their validation.

Both the health-config asset (which inserts the row) and retention (which reads the retention days before
deleting anything) use `validate_config`, so there is one definition of a valid row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# From the ERP's account of the repair (shared/seeds): thresholds, backup location, refresh interval.
DEFAULT_THRESHOLDS: dict[str, dict[str, float]] = {
    "latency": {"warning": 500, "critical": 1000},
    "p95Latency": {"warning": 800, "critical": 1500},
    "errorRate": {"warning": 1, "critical": 5},
    "cacheHitRate": {"warning": 70, "critical": 50},
    "slowQueries": {"warning": 100, "critical": 200},
    "cpuUsage": {"warning": 70, "critical": 85},
    "memoryUsage": {"warning": 80, "critical": 90},
}
DEFAULT_BACKUP_LOCATION = "/backups/railway"
DEFAULT_REFRESH_INTERVAL_MS = 30000
DEFAULT_METRICS_RETENTION_DAYS = 7
DEFAULT_AGGREGATE_RETENTION_DAYS = 365
# Metrics where a higher value is better, so the critical level sits below the warning level.
HIGHER_IS_BETTER = frozenset({"cacheHitRate"})
METRICS_RETENTION_RANGE = (1, 365)
AGGREGATE_RETENTION_RANGE = (30, 1825)


@dataclass(frozen=True)
class HealthConfig:
    thresholds: Any
    backup_location: Any
    refresh_interval: Any
    metrics_retention_days: Any
    aggregate_retention_days: Any


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_thresholds(raw: Any) -> dict[str, Any] | None:
    """The thresholds as a dict (the column is JSONB; a JSON string is accepted too), or None if not an object."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    return raw if isinstance(raw, dict) else None


def validate_config(cfg: HealthConfig) -> list[tuple[str, str]]:
    """Every problem as (key, message); an empty list means the row is valid."""
    problems: list[tuple[str, str]] = []
    thresholds = parse_thresholds(cfg.thresholds)
    if not thresholds:
        problems.append(("thresholds", "must be a JSON object of {metric: {warning, critical}}"))
    else:
        for key, level in thresholds.items():
            where = f"thresholds.{key}"
            if not isinstance(level, dict) or not _is_number(level.get("warning")) or not _is_number(
                level.get("critical")
            ):
                problems.append((where, "needs numeric 'warning' and 'critical'"))
                continue
            warning, critical = level["warning"], level["critical"]
            if key in HIGHER_IS_BETTER and not critical < warning:
                problems.append((where, f"higher is better here, so critical ({critical}) must be below warning ({warning})"))
            elif key not in HIGHER_IS_BETTER and not warning < critical:
                problems.append((where, f"warning ({warning}) must be below critical ({critical})"))
    if not isinstance(cfg.backup_location, str) or not cfg.backup_location.strip():
        problems.append(("backupLocation", "must be a non-empty path"))
    if cfg.refresh_interval is not None and (not _is_int(cfg.refresh_interval) or cfg.refresh_interval <= 0):
        problems.append(("refreshInterval", "must be a positive number of milliseconds"))
    lo, hi = METRICS_RETENTION_RANGE
    metrics = cfg.metrics_retention_days
    if not _is_int(metrics) or not lo <= metrics <= hi:
        problems.append(("metricsRetentionDays", f"must be a whole number of days from {lo} to {hi}, is {metrics!r}"))
    lo, hi = AGGREGATE_RETENTION_RANGE
    aggregate = cfg.aggregate_retention_days
    if not _is_int(aggregate) or not lo <= aggregate <= hi:
        problems.append(
            ("aggregateRetentionDays", f"must be a whole number of days from {lo} to {hi}, is {aggregate!r}")
        )
    elif _is_int(metrics) and aggregate < metrics:
        problems.append(("aggregateRetentionDays", f"({aggregate}) must not be below metricsRetentionDays ({metrics})"))
    return problems


READ_ROW = """
SELECT thresholds, "backupLocation", "refreshInterval", "metricsRetentionDays", "aggregateRetentionDays"
FROM {table} WHERE id = 1
"""


def read_config(conn, schema: str) -> HealthConfig | None:
    """The singleton row (id 1), or None if it is missing."""
    from psycopg import sql

    row = conn.execute(sql.SQL(READ_ROW).format(table=sql.Identifier(schema, "system_health_config"))).fetchone()
    return HealthConfig(*row) if row else None
