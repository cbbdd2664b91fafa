"""How the rollups' checks decide, per UTC day: reconciliation, NULL module_ids, health thresholds; freshness.

Each function judges ONE day and returns a `DayCheck`; `daily_report` turns them into results recorded
per partition (the check specs are partitioned daily), so the partitions view shows which day breached.
They are computed inside the rollup step (the numbers are at hand, and the blocking reconciliation must
stop `retention_pruning` in the same run). Freshness is both a `FreshnessPolicy` on the assets and
Dagster's per-partition freshness check evaluated by its own sensor (why both: see below).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import dagster as dg

from erp_pipelines.health_config import parse_thresholds
from erp_pipelines.rollups.daily_report import DayCheck

# Freshness: by 03:00 UTC the previous UTC day's partition must be materialized (the nightly schedule
# starts at 02:00 UTC, so this leaves an hour for the run, its retries and the queue).
FRESHNESS_DEADLINE_CRON = "0 3 * * *"


def reconciliation_day(day: date, mismatch: str | None, raw_rows: int, kept: str | None = None) -> DayCheck:
    """ERROR (blocking) when the day's aggregate does not reconcile with its raw rows.

    A day without raw rows (none yet, or pruned) and a day whose aggregate was kept because its raw rows
    are incomplete pass: there is nothing they could be reconciled with (the metadata says `judged: 0`).
    """
    if kept is not None:
        return DayCheck(day, True, f"{day}: not reconciled, the aggregate was kept ({kept}).",
                        metadata={"judged": dg.MetadataValue.int(0), "raw_rows": dg.MetadataValue.int(raw_rows)})
    if raw_rows == 0:
        return DayCheck(day, True, f"{day}: no raw rows (none yet, or pruned): nothing to reconcile.",
                        metadata={"judged": dg.MetadataValue.int(0), "raw_rows": dg.MetadataValue.int(0)})
    metadata = {"judged": dg.MetadataValue.int(1), "raw_rows": dg.MetadataValue.int(raw_rows)}
    if mismatch is None:
        return DayCheck(day, True, f"{day}: the aggregate reconciles with its {raw_rows} raw row(s).",
                        metadata=metadata)
    return DayCheck(day, False, f"{day} does not reconcile with its raw rows: {mismatch}.",
                    metadata={**metadata, "mismatch": dg.MetadataValue.text(mismatch)})


def null_module_day(day: date, null_module_events: int) -> DayCheck:
    """WARN: usage events without a module_id cannot be stored in client_daily_usage (it is in the key)."""
    return DayCheck(
        day,
        null_module_events == 0,
        (
            f"{day}: every usage event has a module_id."
            if null_module_events == 0
            else f"{day}: {null_module_events} usage event(s) have no module_id and are not in "
            "client_daily_usage (module_id is part of its primary key; the module may have been deleted: "
            "ON DELETE SET NULL)."
        ),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"null_module_events": dg.MetadataValue.int(null_module_events)},
    )


def _level(value: float, levels: Any) -> tuple[str | None, float | None, float | None]:
    """("critical" | "warning" | None, warning, critical) for a higher-is-worse metric."""
    if not isinstance(levels, dict):
        return None, None, None
    warning, critical = levels.get("warning"), levels.get("critical")
    if not isinstance(warning, int | float) or not isinstance(critical, int | float):
        return None, None, None
    if value >= critical:
        return "critical", warning, critical
    if value >= warning:
        return "warning", warning, critical
    return None, warning, critical


def health_day(day: date, row: Sequence[Any] | None, thresholds_raw: Any) -> DayCheck:
    """The day's avgLatencyMs and avgErrorRatePct against thresholds.latency / thresholds.errorRate.

    At or above `warning`: WARN; at or above `critical`: ERROR. Values and thresholds are in the metadata.
    A day without samples, or a config without the two thresholds, passes with a description saying so
    (nothing was measured to be unhealthy); a missing config row is a WARN (nothing can be judged).
    """
    metadata: dict[str, Any] = {}
    thresholds = parse_thresholds(thresholds_raw)
    if thresholds is None:
        return DayCheck(
            day,
            False,
            "system_health_config has no row id 1 or its thresholds are not a JSON object; "
            "materialize system_health_config.",
            severity=dg.AssetCheckSeverity.WARN,
        )
    if row is None:
        return DayCheck(day, True, f"No metric samples for {day}: nothing to judge.")
    latency, error_rate = row[0], row[1]
    breaches: list[tuple[str, str, float, float]] = []
    for metric, value in (("latency", latency), ("errorRate", error_rate)):
        if value is None:
            continue
        level, warning, critical = _level(float(value), thresholds.get(metric))
        if warning is not None:
            metadata[f"{metric}_warning"] = dg.MetadataValue.float(float(warning))
            metadata[f"{metric}_critical"] = dg.MetadataValue.float(float(critical))
        if level:
            breaches.append((metric, level, float(value), float(warning if level == "warning" else critical)))
    if latency is not None:
        metadata["avgLatencyMs"] = dg.MetadataValue.int(int(latency))
    if error_rate is not None:
        metadata["avgErrorRatePct"] = dg.MetadataValue.float(float(error_rate))
    if not breaches:
        return DayCheck(day, True, f"{day}: latency and error rate below their warning thresholds.",
                        metadata=metadata)
    critical = any(level == "critical" for _, level, _, _ in breaches)
    return DayCheck(
        day,
        False,
        f"{day}: " + "; ".join(f"{m} {v:g} is at or above its {lvl} threshold {t:g}" for m, lvl, v, t in breaches),
        severity=dg.AssetCheckSeverity.ERROR if critical else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )


# -- freshness ------------------------------------------------------------------------------------------
#
# Two complementary forms, both on purpose:
# - ROLLUP_FRESHNESS_POLICY, Dagster 1.13's own freshness (`dg.FreshnessPolicy.cron`): the asset is fresh
#   when it was materialized between 02:00 and 03:00 UTC (the nightly run's hour) or later. It judges the
#   newest materialization of ANY partition, so a backfill of an old day, or a late-data re-run of last
#   week, makes the asset look fresh although yesterday's partition was never rolled up.
# - the per-partition freshness checks (`build_freshness_checks`, Dagster's time-partition freshness
#   check, run by `rollup_freshness_sensor`): yesterday's partition itself must be materialized by 03:00
#   UTC. That is what an operator relies on each morning, and it fails even when no run happens at all.
ROLLUP_FRESHNESS_POLICY = dg.FreshnessPolicy.cron(
    deadline_cron=FRESHNESS_DEADLINE_CRON, lower_bound_delta=timedelta(hours=1), timezone="UTC"
)


def build_freshness_checks(assets: Sequence[dg.AssetsDefinition]) -> Sequence[dg.AssetChecksDefinition]:
    """`<asset>` freshness: the newest complete UTC day must be materialized by 03:00 UTC.

    Dagster 1.13 marks these checks as superseded by `FreshnessPolicy`; the rollups have that policy too
    (ROLLUP_FRESHNESS_POLICY), but it cannot see WHICH partition was materialized (comment above), so the
    per-partition check stays and its SupersessionWarning is silenced.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        return dg.build_time_partition_freshness_checks(
            assets=list(assets), deadline_cron=FRESHNESS_DEADLINE_CRON, timezone="UTC"
        )
