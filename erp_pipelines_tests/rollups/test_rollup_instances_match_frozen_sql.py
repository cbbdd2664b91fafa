"""The two original rollups, now component instances, give exactly the rows the statements of before gave.

Same generated data (the demo generator: late rows, NULL modules, unknown event types, idle samples), three
computations: the frozen copies of the old statements (support/frozen_rollup_sql.py), the instances as the
graph runs them (one single-run backfill), and, for client_daily_usage, the SQL generated from its YAML
declaration alone (rollups/declared_sql.py). Every row and column is compared (timestamps aside).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from erp_pipelines.demo.generate import generate_demo_data
from erp_pipelines.partitions import day_bounds
from erp_pipelines.rollups import declared_sql, row_hash
from erp_pipelines.rollups.registry import ROLLUP_COMPONENTS, rollup_named
from erp_pipelines.rollups.usage_daily import DEFAULT_EVENT_CATEGORIES, category_params
from erp_pipelines_tests.support.erp_data import create_erp_tables
from erp_pipelines_tests.support.frozen_rollup_sql import FROZEN_METRIC_DAY_UPSERT, FROZEN_USAGE_DAY_REPLACE
from erp_pipelines_tests.support.rollups import ago, roll_up_range

METRIC_ROWS = 'SELECT day::date, "avgLatencyMs", "avgErrorRatePct", "reqCount", "errCount" FROM system_metric_daily ORDER BY 1'
USAGE_COLUMNS = "date, client_id, module_id, view_count, create_count, edit_count, delete_count, active_users"
USAGE_ROWS = f"SELECT {USAGE_COLUMNS} FROM client_daily_usage ORDER BY 1, 2, 3"  # noqa: S608 - constants


def _frozen_rows(conn, days):
    """Both aggregates computed by the frozen statements, in a transaction rolled back afterwards."""
    metric, usage = rollup_named("system_metric_daily"), rollup_named("client_daily_usage")
    with conn.transaction(force_rollback=True):
        metric_hash = row_hash.for_table(conn, metric.raw_table, metric.hashed_columns)
        usage_hash = row_hash.for_table(conn, usage.raw_table, usage.hashed_columns)
        for day in days:
            start, end = day_bounds(day)
            params = {"day": day, "day_start": start, "day_end": end, "now": start,
                      **category_params(DEFAULT_EVENT_CATEGORIES)}
            conn.execute(FROZEN_METRIC_DAY_UPSERT.replace("{raw_row_hash}", metric_hash), params)
            conn.execute(FROZEN_USAGE_DAY_REPLACE.replace("{raw_row_hash}", usage_hash), params)
        return conn.execute(METRIC_ROWS).fetchall(), conn.execute(USAGE_ROWS).fetchall()


def test_the_instances_and_the_declaration_give_the_rows_of_the_frozen_statements(conn, resources, instance):
    create_erp_tables(conn)
    first, last = ago(6), ago(2)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    generate_demo_data(conn, days=len(days), events=30_000, clients=25, modules=6, end_day=last, samples=3_000,
                       progress=lambda *_: None)
    conn.execute("UPDATE system_metric_samples SET \"reqCount\" = 0 WHERE id % 17 = 0")  # idle samples
    frozen_metric, frozen_usage = _frozen_rows(conn, days)
    assert len(frozen_metric) == len(days) and len(frozen_usage) > 100

    result = roll_up_range(resources, instance, first, last)
    assert result.success
    assert conn.execute(METRIC_ROWS).fetchall() == frozen_metric
    assert conn.execute(USAGE_ROWS).fetchall() == frozen_usage

    # client_daily_usage from its YAML declaration alone, into a table of our own schema
    usage_instance = next(c for c in ROLLUP_COMPONENTS if c.aggregate_table == "client_daily_usage")
    decl = dataclasses.replace(usage_instance.declaration(), aggregate_table="client_daily_usage_declared")
    spec = rollup_named("client_daily_usage")
    with conn.transaction():
        conn.execute("SET LOCAL search_path = public")
        bound = declared_sql.bind(conn, decl, spec.fingerprint_sql)
        for day in days:
            start, end = day_bounds(day)
            raw_rows, *_ = conn.execute(bound.replace_day_sql, {
                "day": day, "day_start": start, "day_end": end, "now": start, **decl.params()}).fetchone()
            ledger = conn.execute("SELECT raw_rows FROM erp_pipelines.rollup_ledger "
                                  "WHERE rollup = 'client_daily_usage' AND day = %s", (day,)).fetchone()
            # the same rows read (the hash differs: it seeds each column by its position in the declaration)
            assert raw_rows == ledger[0]
    declared = conn.execute(
        f"SELECT {USAGE_COLUMNS} FROM erp_pipelines.client_daily_usage_declared "  # noqa: S608
        "ORDER BY 1, 2, 3"
    ).fetchall()
    assert declared == frozen_usage
