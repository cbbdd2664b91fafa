"""Which raw rows an aggregate can hold, and the raw rows no aggregate holds: NULL keys, late rows for pruned days.

Why a module of its own: retention may delete a raw row only when an aggregate row provably holds it. A row
with a NULL in a column that becomes part of the aggregate's key (`RollupSpec.raw_key_columns`, e.g. a usage
event without `module_id`) can enter no aggregate row, so it is never pruned (it stays raw, and its day's
check counts it); a raw row that arrives for a day retention already pruned is in no aggregate either (the
day's aggregate is never rebuilt), and the nightly run reports those late rows over EVERY pruned day, not
just the days of its window. Every function takes a `RollupSpec`, never a table name.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg
from psycopg import sql

from erp_pipelines import own_schema
from erp_pipelines.rollups.spec import RollupSpec

# The keyed raw rows on each pruned day of the raw table: one index range count per pruned day.
LATE_ROWS_BY_PRUNED_DAY = sql.SQL(
    """
SELECT p.day, late.n
FROM {pruned} AS p
CROSS JOIN LATERAL (
    SELECT count(*) AS n FROM {raw}
    WHERE {ts} >= {day_start} AND {ts} < {day_end} AND {holdable}
) AS late
WHERE p.raw_table = %(raw_table)s AND late.n > 0
ORDER BY p.day
"""
)
NULL_KEY_ROWS = sql.SQL(
    "SELECT count(*) FROM {raw} WHERE {ts} >= %(day_start)s AND {ts} < %(day_end)s AND NOT ({holdable})"
)
HOLDABLE_ROWS = sql.SQL(
    "SELECT count(*) FROM {raw} WHERE {ts} >= %(day_start)s AND {ts} < %(day_end)s AND {holdable}"
)


def holdable(spec: RollupSpec) -> sql.Composable:
    """The condition a raw row meets when an aggregate row can hold it: every key column is set."""
    if not spec.raw_key_columns:
        return sql.SQL("true")
    return sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in spec.raw_key_columns)


def _compose(statement: sql.SQL, spec: RollupSpec, **extra: Any) -> sql.Composed:
    return statement.format(
        raw=sql.Identifier(spec.raw_table), ts=sql.Identifier(spec.ts_column), holdable=holdable(spec), **extra
    )


def null_key_rows(conn: psycopg.Connection, spec: RollupSpec, day_start: object, day_end: object) -> int:
    """Raw rows of the day that no aggregate row can hold (a NULL key column); 0 without a query when the
    spec has no nullable key."""
    if not spec.raw_key_columns:
        return 0
    return int(conn.execute(_compose(NULL_KEY_ROWS, spec), {"day_start": day_start, "day_end": day_end})
               .fetchone()[0])


def holdable_rows(conn: psycopg.Connection, spec: RollupSpec, day_start: object, day_end: object) -> int:
    """Raw rows of the day an aggregate row could hold (on a pruned day: its late rows)."""
    return int(conn.execute(_compose(HOLDABLE_ROWS, spec), {"day_start": day_start, "day_end": day_end})
               .fetchone()[0])


def late_rows_by_pruned_day(conn: psycopg.Connection, spec: RollupSpec, schema: str | None = None) -> dict[date, int]:
    """Every pruned day of the spec's raw table that has raw rows an aggregate could hold (late arrivals)."""
    pruned = sql.Identifier(schema or own_schema.own_schema_name(), "pruned_days")
    # UTC midnights as the time column compares them (a `timestamptz` column: whatever the session's TimeZone)
    utc = sql.SQL(" AT TIME ZONE 'UTC'") if spec.ts_type == "timestamptz" else sql.SQL("")
    bounds = {"day_start": sql.SQL("(p.day::timestamp{})").format(utc),
              "day_end": sql.SQL("((p.day + 1)::timestamp{})").format(utc)}
    rows = conn.execute(_compose(LATE_ROWS_BY_PRUNED_DAY, spec, pruned=pruned, **bounds),
                        {"raw_table": spec.raw_table})
    return {day: int(n) for day, n in rows.fetchall()}
