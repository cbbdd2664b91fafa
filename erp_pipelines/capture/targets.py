"""Which raw tables are captured, and which rollups each one feeds: derived from the rollup specs.

Kept apart from the trigger DDL so the sensor and the asset share one answer, and adding a rollup (one spec)
adds its raw table to change capture without touching this package.
"""

from __future__ import annotations

from dataclasses import dataclass

from erp_pipelines import settings

CHANGE_CAPTURE_ENV = settings.CHANGE_CAPTURE


@dataclass(frozen=True)
class CaptureTarget:
    """A raw table the ERP writes, the column whose UTC day is its partition, and the rollups it feeds."""

    raw_table: str
    ts_column: str
    rollups: tuple[str, ...]


def capture_targets() -> tuple[CaptureTarget, ...]:
    """One target per raw table, in a stable order."""
    from erp_pipelines.rollups.registry import ROLLUPS  # the specs import Dagster assets; load them late

    by_table: dict[tuple[str, str], list[str]] = {}
    for spec in ROLLUPS:
        by_table.setdefault((spec.raw_table, spec.ts_column), []).append(spec.asset_key)
    return tuple(
        CaptureTarget(raw_table, ts_column, tuple(sorted(rollups)))
        for (raw_table, ts_column), rollups in sorted(by_table.items())
    )


def change_capture_enabled(override: bool | None = None) -> bool:
    """The run config's `change_capture` if set, else ERP_PIPELINES_CHANGE_CAPTURE (on by default)."""
    return settings.change_capture() if override is None else override
