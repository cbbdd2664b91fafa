"""The per-day loop every rollup shares: its window, 'today', the data-loss guard's helpers, metadata helpers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import psycopg

from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.partitions import days_in_window, to_naive_utc
from erp_pipelines.resources import ErpDatabase


def guard_today(override: str | None) -> date:
    """'today' for the data-loss guard and retention: the override (YYYY-MM-DD) or the wall clock's UTC day."""
    if override is None:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(override)
    except ValueError:
        raise ErpPipelinesError(
            f"today {override!r} is not a date.",
            where="run config `today`",
            fix="Use YYYY-MM-DD, or leave it unset to use the current UTC day.",
        ) from None


READ_METRICS_RETENTION = 'SELECT "metricsRetentionDays" FROM system_health_config WHERE id = 1'


def samples_cutoff(conn: psycopg.Connection, today: date) -> date | None:
    """today - metricsRetentionDays (days before it may have lost samples), None if not configured."""
    try:
        with conn.transaction():
            row = conn.execute(READ_METRICS_RETENTION).fetchone()
    except psycopg.errors.UndefinedTable:
        return None
    days = row[0] if row else None
    return today - timedelta(days=days) if isinstance(days, int) and days > 0 else None


def now_naive() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def window_days(context: dg.AssetExecutionContext) -> tuple[list[date], datetime, datetime]:
    window = context.partition_time_window
    return list(days_in_window(window)), to_naive_utc(window.start), to_naive_utc(window.end)


def table_name_metadata(erp_db: ErpDatabase, table: str) -> dg.MetadataValue:
    return dg.MetadataValue.text(f"{erp_db.db_schema}.{table}")



def incomplete_reason(
    day: date, cutoff: date | None, totals: list[tuple[str, int, int | None]]
) -> str | None:
    """Why a day that has an aggregate must keep it (its raw rows may be incomplete), or None."""
    if cutoff is not None and day < cutoff:
        return f"older than the raw retention cutoff {cutoff}: its raw rows may have been pruned"
    for name, raw, aggregate in totals:
        if aggregate is not None and raw < aggregate:
            return f"raw {name} {raw} < aggregate {aggregate}: raw rows are missing"
    return None


def log_incomplete(context: dg.AssetExecutionContext, table: str, kept: dict[str, str]) -> None:
    if kept:
        context.log.warning(
            f"{table}: {len(kept)} day(s) keep their aggregate because their raw rows may be incomplete "
            "(re-aggregating would lose the pruned rows): "
            + "; ".join(f"{d}: {why}" for d, why in sorted(kept.items())[:20])
        )


