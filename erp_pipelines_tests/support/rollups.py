"""Test helpers for the rollup and retention tests: days relative to today, running the assets, reading rows."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import psycopg

from erp_pipelines.retention.assets import retention_pruning
from erp_pipelines.rollups.assets import client_daily_usage, system_metric_daily

TODAY = datetime.now(UTC).date()
ROLLUP_ASSETS = [system_metric_daily, client_daily_usage]


def ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def at(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute)


def roll_up(
    resources: dict, instance: dg.DagsterInstance, *days: date, config: dict[str, Any] | None = None,
    assets: list | None = None, raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """Materialize the rollups for each day (one run per day); the last result."""
    result = None
    for day in days:
        result = dg.materialize(
            assets or ROLLUP_ASSETS,
            partition_key=str(day),
            resources=resources,
            instance=instance,
            run_config={"ops": {a.op.name: {"config": config} for a in (assets or ROLLUP_ASSETS)}} if config else None,
            raise_on_error=raise_on_error,
        )
        assert result.success or not raise_on_error
    return result


def roll_up_range(
    resources: dict, instance: dg.DagsterInstance, first: date, last: date, config: dict[str, Any] | None = None,
    assets: list | None = None,
) -> dg.ExecuteInProcessResult:
    """One single-run backfill of [first, last]."""
    return dg.materialize(
        assets or ROLLUP_ASSETS,
        resources=resources,
        instance=instance,
        tags={"dagster/asset_partition_range_start": str(first), "dagster/asset_partition_range_end": str(last)},
        run_config={"ops": {a.op.name: {"config": config} for a in (assets or ROLLUP_ASSETS)}} if config else None,
        raise_on_error=False,
    )


def prune(resources: dict, instance: dg.DagsterInstance, **config: Any) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [retention_pruning],
        resources=resources,
        instance=instance,
        run_config={"ops": {"retention_pruning": {"config": config}}} if config else None,
        raise_on_error=False,
    )


def retention_metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    md = result.asset_materializations_for_node("retention_pruning")[0].metadata
    return {k: getattr(v, "value", v) for k, v in md.items()}


def check_results(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}


def count(conn: psycopg.Connection, query: str, *params: Any) -> int:
    return conn.execute(query, params).fetchone()[0]


def rows_on(conn: psycopg.Connection, table: str, ts: str, day: date) -> int:
    from psycopg import sql

    return conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE {} >= %s AND {} < %s").format(
            sql.Identifier(table), sql.Identifier(ts), sql.Identifier(ts)
        ),
        (at(day), at(day + timedelta(days=1))),
    ).fetchone()[0]


def usage_rows(conn: psycopg.Connection, day: date | None = None) -> dict:
    rows = conn.execute(
        "SELECT date, client_id, module_id, view_count, create_count, edit_count, delete_count, active_users "
        "FROM client_daily_usage WHERE %(day)s::date IS NULL OR date = %(day)s",
        {"day": day},
    ).fetchall()
    return {(d, c, m): (v, cr, e, de, au) for d, c, m, v, cr, e, de, au in rows}


def metric_rows(conn: psycopg.Connection) -> dict:
    return {
        day.date(): (lat, rate, req, err)
        for day, lat, rate, req, err in conn.execute(
            'SELECT day, "avgLatencyMs", "avgErrorRatePct", "reqCount", "errCount" FROM system_metric_daily'
        ).fetchall()
    }


def raw_events(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT client_id, module_id, user_id, event_type, occurred_at FROM client_usage_events").fetchall()


def raw_samples(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        'SELECT "latencyMs", "errorRatePct", "reqCount", "errCount", collected_at FROM system_metric_samples '
        "WHERE collected_at IS NOT NULL"
    ).fetchall()


def metrics_equal(actual: tuple, expected: tuple) -> bool:
    (a_lat, a_rate, a_req, a_err), (lat, rate, req, err) = actual, expected
    if (a_lat, a_req, a_err) != (lat, req, err) or (a_rate is None) != (rate is None):
        return False
    return rate is None or math.isclose(a_rate, rate, rel_tol=1e-9, abs_tol=1e-9)
