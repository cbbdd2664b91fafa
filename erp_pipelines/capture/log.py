"""Reading the invalidation log: which (raw table, UTC day) pairs have marks, cheaply.

The log holds one row per app statement and day touched until a rollup clears them, so a busy day can hold
many marks. The sensor needs only the distinct pairs: a loose index scan (a recursive CTE hopping from one
(raw_table, day) key of the `invalidations_table_day` index to the next) reads one index entry per distinct
pair instead of every mark. Nothing here writes: marks are deleted only by the rollup that re-aggregated
the day, in its own write transaction, so a reader that crashes loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import psycopg
from psycopg import sql

from erp_pipelines import own_schema

MAX_MARKED_DAYS = 10_000

MARKED_DAYS = sql.SQL(
    """
WITH RECURSIVE marks AS (
    (SELECT raw_table, day FROM {log} ORDER BY raw_table, day LIMIT 1)
    UNION ALL
    SELECT later.raw_table, later.day
    FROM marks m
    CROSS JOIN LATERAL (
        SELECT i.raw_table, i.day FROM {log} i
        WHERE (i.raw_table, i.day) > (m.raw_table, m.day)
        ORDER BY i.raw_table, i.day
        LIMIT 1
    ) later
)
SELECT raw_table, day::text FROM marks LIMIT %(limit)s
"""
)
LOG_EXISTS = "SELECT to_regclass(%(log)s) IS NOT NULL"
PRUNED_AMONG = sql.SQL(
    "SELECT p.raw_table, p.day FROM {pruned} p "
    "JOIN unnest(%(tables)s::text[], %(days)s::date[]) AS m(raw_table, day) USING (raw_table, day)"
)


@dataclass(frozen=True, order=True)
class MarkedDay:
    """A raw table's UTC day that changed since its rollup last read it (`out_of_range`: the day was past the
    year 9999, before year 1, or +/-infinity, and is clamped to date.max / date.min: no partition has it)."""

    raw_table: str
    day: date
    out_of_range: bool = False


def parse_day(text: str) -> tuple[date, bool]:
    """A PostgreSQL `date` as text -> (the day, False), or (date.max / date.min, True) when Python's `date`
    cannot hold it (year 20000, 'infinity', '-infinity', a BC day): a raw row stamped there must not make
    the sensor fail on every tick."""
    try:
        return date.fromisoformat(text), False
    except ValueError:
        low = text.startswith("-") or text.endswith(" BC")
        return (date.min if low else date.max), True


def log_exists(conn: psycopg.Connection, schema: str | None = None) -> bool:
    log = sql.Identifier(schema or own_schema.own_schema_name(), "invalidations").as_string(conn)
    return bool(conn.execute(LOG_EXISTS, {"log": log}).fetchone()[0])


def marked_days(
    conn: psycopg.Connection, schema: str | None = None, limit: int = MAX_MARKED_DAYS
) -> list[MarkedDay]:
    """The distinct (raw_table, day) pairs with marks, ordered by table then day (at most `limit`)."""
    log = sql.Identifier(schema or own_schema.own_schema_name(), "invalidations")
    rows = conn.execute(MARKED_DAYS.format(log=log), {"limit": limit}).fetchall()
    return [MarkedDay(raw_table, *parse_day(day)) for raw_table, day in rows]


def pruned_among(conn: psycopg.Connection, marked: list[MarkedDay], schema: str | None = None) -> set[MarkedDay]:
    """The marked days retention already pruned: their aggregate is never rebuilt from the raw rows left
    (late rows for them stay raw and retention reports them), so refreshing them would do nothing."""
    marked = [m for m in marked if not m.out_of_range]
    if not marked:
        return set()
    pruned = sql.Identifier(schema or own_schema.own_schema_name(), "pruned_days")
    rows = conn.execute(
        PRUNED_AMONG.format(pruned=pruned),
        {"tables": [m.raw_table for m in marked], "days": [m.day for m in marked]},
    ).fetchall()
    return {MarkedDay(raw_table, day) for raw_table, day in rows}
