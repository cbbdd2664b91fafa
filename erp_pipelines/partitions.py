"""The one daily partitioning shared by both rollups: a partition is one UTC day.

The ERP stores `timestamp without time zone` columns holding UTC, so a partition `2025-03-01` is exactly
the rows with `'2025-03-01 00:00' <= ts < '2025-03-02 00:00'`, whatever the server's or the session's
`TimeZone`. `day_bounds` turns a partition key or time window into the naive UTC datetimes that are
passed as SQL parameters (psycopg sends naive datetimes as `timestamp`, so no time-zone conversion can
happen on either side of the comparison).

The first partition is `ERP_ROLLUP_START_DATE` (YYYY-MM-DD, default 2025-01-01): the day the ERP started
writing usage events and metric samples, so a full backfill covers exactly the history. Why it is
discovered: a partition before the first raw row can only ever be empty, yet Dagster shows it as "Missing",
the backfill dialog's "Missing" selects it and every plot's axis starts there (the demo showed ~700
partitions, 672 of them Missing, for 30 days of data). Definitions must load without a database, so the
commands that start Dagster (`make run`, `make dev`: `export_start_date`) read the first day of the raw
tables ONCE and pass it as ERP_ROLLUP_START_DATE to what they start; a value you set yourself wins.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, MutableMapping
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import psycopg
from psycopg import sql

from erp_pipelines import settings

DEFAULT_START_DATE = settings.DEFAULT_ROLLUP_START_DATE
START_DATE_ENV = settings.ROLLUP_START_DATE


# Dagster's run tags of a partition and of a partition range (the strings Dagster writes on runs and reads
# from them, e.g. `tags={"dagster/asset_partition_range_start": ...}` in its docs), named here rather than
# imported from Dagster's private `dagster._core.storage.tags`; a unit test checks they still agree.
PARTITION_NAME_TAG = "dagster/partition"
ASSET_PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
ASSET_PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"


def rollup_start_date() -> str:
    """The first partition day, validated, from ERP_ROLLUP_START_DATE (read by erp_pipelines/settings.py)."""
    return settings.rollup_start_date()


def daily_partitions(start_date: str | None = None) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start_date or rollup_start_date(), timezone="UTC")


DAILY_PARTITIONS = daily_partitions()


def to_naive_utc(moment: datetime) -> datetime:
    """A naive datetime holding UTC (the ERP's convention), from an aware or naive-UTC datetime."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def partition_day(key: str) -> date:
    return date.fromisoformat(key)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a UTC day as naive datetimes, the parameters of every per-day statement."""
    start = datetime(day.year, day.month, day.day)
    return start, start + timedelta(days=1)


def days_in_window(window: dg.TimeWindow) -> Iterator[date]:
    """The UTC days of a partition time window (one for a single partition, N for a backfill)."""
    day = to_naive_utc(window.start).date()
    end = to_naive_utc(window.end).date()
    while day < end:
        yield day
        day += timedelta(days=1)


FIRST_RAW_TIME = "SELECT min({ts}) FROM {table}"  # served by the raw table's timestamp index


def first_raw_day(conn: psycopg.Connection, erp_schema: str, raw_tables: Iterable[tuple[str, str]]) -> date | None:
    """The first UTC day holding a raw row in any of `raw_tables` ((table, timestamp column)); None when
    they are empty or missing."""
    days = []
    for table, ts in raw_tables:
        qualified = sql.Identifier(erp_schema, table)
        if conn.execute("SELECT to_regclass(%s)", (qualified.as_string(conn),)).fetchone()[0] is None:
            continue
        first = conn.execute(sql.SQL(FIRST_RAW_TIME).format(ts=sql.Identifier(ts), table=qualified)).fetchone()[0]
        if first is not None:
            days.append(to_naive_utc(first).date() if isinstance(first, datetime) else first)
    return min(days) if days else None


def export_start_date(erp_db, planned_first_day: date | None = None,
                      env: MutableMapping[str, str] = os.environ) -> str | None:
    """Set ERP_ROLLUP_START_DATE (for this process and what it starts) to the first day of raw data, or to
    `planned_first_day` (data about to be generated) when that is earlier or there is none yet. A value
    already set is kept. Returns the value set, or None."""
    from erp_pipelines.rollups.registry import ROLLUPS

    if env.get(START_DATE_ENV):
        return None
    with erp_db.connect("partition-start", autocommit=True) as conn:
        found = first_raw_day(conn, erp_db.db_schema, [(spec.raw_table, spec.ts_column) for spec in ROLLUPS])
    candidates = [d for d in (found, planned_first_day) if d is not None]
    if not candidates:
        return None
    env[START_DATE_ENV] = min(candidates).isoformat()
    return env[START_DATE_ENV]
