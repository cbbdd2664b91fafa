"""Plan shape, not time: the per-day statements every rollup, backfill and retention batch runs never walk
an index unrelated to their day range (the measured failure mode: a 30-day statement walking the random-uuid
`client_id` index). EXPLAIN is deterministic for the same data and statistics; a stopwatch is not.

A single-run backfill runs these same one-day statements once per day of its window, so asserting the
one-day plans covers the backfill path too (see `test_backfill_runs_one_statement_per_day`).
"""

from datetime import date, datetime, timedelta

import psycopg
import pytest

from erp_pipelines.demo.generate import generate_demo_data
from erp_pipelines.retention import sql as retention_sql
from erp_pipelines.rollups import sql as rollup_sql
from erp_pipelines.rollups.registry import ROLLUPS
from erp_pipelines_tests.support.erp_data import create_erp_tables

END_DAY = date(2026, 3, 31)
CATEGORIES = {
    "view_types": ["view", "page_view", "read", "open"],
    "create_types": ["create", "insert", "add"],
    "edit_types": ["edit", "update", "modify"],
    "delete_types": ["delete", "remove"],
}
# Indexes a day-range statement may use: the timestamp ranges, primary keys and the aggregates' own keys.
ALLOWED = {
    "client_usage_events_occurred_at_idx",
    "client_usage_events_pkey",
    "system_metric_samples_collected_at_idx",
    "system_metric_samples_pkey",
    "system_metric_daily_day_key",
    "system_metric_daily_pkey",
    "client_daily_usage_pkey",
}


@pytest.fixture(scope="module")
def analyzed_db(pg_server):
    from erp_pipelines_tests.support.databases import new_database

    url = new_database(pg_server)
    with psycopg.connect(url, autocommit=True) as conn:
        create_erp_tables(conn)
        generate_demo_data(conn, days=30, events=60_000, clients=60, modules=12, end_day=END_DAY,
                           progress=lambda _: None)
        conn.execute("ANALYZE")
    return url


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _plan(url: str, statement: str, params: dict) -> list[dict]:
    with psycopg.connect(url) as conn:
        row = conn.execute("EXPLAIN (FORMAT JSON) " + statement, params).fetchone()  # noqa: S608 - constant SQL
        conn.rollback()
    return list(_nodes(row[0][0]["Plan"]))


def _day_params(day: date) -> dict:
    start = datetime(day.year, day.month, day.day)
    return {"day": day, "day_start": start, "day_end": start + timedelta(days=1), "now": datetime(2026, 4, 1),
            "from_ts": start, "to_ts": start + timedelta(hours=6), **CATEGORIES}


@pytest.mark.parametrize(
    "name",
    ["USAGE_DAY_REPLACE", "USAGE_DAY_STATS", "USAGE_DAY_MISMATCHES", "METRIC_DAY_READ", "METRIC_DAY_RECONCILE",
     "METRIC_DAY_PARTIALS"],
)
def test_daily_rollup_statement_reads_only_its_day_range(analyzed_db, name):
    statement = getattr(rollup_sql, name)
    for spec in ROLLUPS:  # the statements that hash rows, as they run: with the per-row hash put in
        if statement in (spec.replace_day_sql, spec.reconcile_day_sql, spec.day_partials_sql):
            with psycopg.connect(analyzed_db) as conn:
                bound = spec.bind(conn)
            statement = {spec.replace_day_sql: bound.replace_day_sql, spec.reconcile_day_sql: bound.reconcile_day_sql,
                         spec.day_partials_sql: bound.day_partials_sql}[statement]
    nodes = _plan(analyzed_db, statement, _day_params(END_DAY - timedelta(days=3)))
    used = {n["Index Name"] for n in nodes if "Index Name" in n}
    assert used <= ALLOWED, f"{name} walks an unrelated index: {used - ALLOWED}"
    raw_scans = [n for n in nodes if n.get("Relation Name") in ("client_usage_events", "system_metric_samples")]
    assert raw_scans, f"{name} does not read the raw table?"
    for scan in raw_scans:
        # Either an index range on the day's timestamp, or a filter on it: never an unbounded walk.
        condition = scan.get("Index Cond", "") + scan.get("Filter", "") + scan.get("Recheck Cond", "")
        assert "occurred_at" in condition or "collected_at" in condition, (name, scan["Node Type"], condition)


@pytest.mark.parametrize("statement", ["BATCH_END", "DELETE_RANGE", "DELETE_TIED_BATCH"])
def test_retention_batches_walk_the_timestamp_index(analyzed_db, statement):
    day = _day_params(END_DAY - timedelta(days=20))
    composed = retention_sql.compose(getattr(retention_sql, statement), "client_usage_events", "occurred_at", "id")
    with psycopg.connect(analyzed_db) as conn:
        text = composed.as_string(conn)
    nodes = _plan(analyzed_db, text, {**day, "from_ts": day["day_start"], "batch": 5000,
                                      "to_ts": day["day_start"] + timedelta(hours=1), "at_ts": day["day_start"]})
    used = {n["Index Name"] for n in nodes if "Index Name" in n}
    assert used <= ALLOWED, used
    assert "client_usage_events_occurred_at_idx" in used  # the day's range, not an id span
    if statement == "DELETE_TIED_BATCH":
        assert any(n["Node Type"] == "Tid Scan" for n in nodes), [n["Node Type"] for n in nodes]


def test_backfill_runs_one_statement_per_day(erp_url, conn):
    """A 30-day single run walks its window day by day with the statements planned above (the asset
    reports the days it iterated), rather than one statement over the whole range."""
    import dagster as dg

    from erp_pipelines.resources import ErpDatabase
    from erp_pipelines.rollups.assets import client_daily_usage, system_metric_daily

    create_erp_tables(conn)
    generate_demo_data(conn, days=30, events=3000, clients=5, modules=3, end_day=END_DAY, progress=lambda _: None)
    first = END_DAY - timedelta(days=29)
    result = dg.materialize(
        [system_metric_daily, client_daily_usage],
        resources={"erp_db": ErpDatabase(url=erp_url)},
        tags={"dagster/asset_partition_range_start": first.isoformat(),
              "dagster/asset_partition_range_end": END_DAY.isoformat()},
    )
    assert result.success
    md = result.asset_materializations_for_node("system_metric_daily")[0].metadata
    assert md["days_in_window"].value == 30
    assert conn.execute("SELECT count(*) FROM system_metric_daily").fetchone()[0] == 30
