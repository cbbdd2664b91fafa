"""Every SQL statement of `retention_pruning`: keyset deletes of one raw day, whole old aggregate days.

Raw rows are deleted one UTC day at a time, only when the day's fingerprint equals the rollup ledger's
(retention/assets.py). Inside a day, rows go in batches walked by keyset on (timestamp, id) through the
timestamp index: each batch reads the next `batch_size` rows of the day in (ts, id) order after the last
one deleted, so the number of statements is rows / batch_size whatever the id values are (integer, uuid,
text/cuid: only their order is used), and a row far away in id space costs nothing. Rows are deleted by
ctid (a TID scan), so the statement does not depend on the id's type or on a primary-key index.
Tables and columns come from the rollup's spec (psycopg.sql identifiers); values are parameters.
"""

from __future__ import annotations

from psycopg import sql

# The first raw day on or after `from_start` and before `cutoff` that still has rows (timestamp index).
NEXT_RAW_DAY = sql.SQL(
    """
SELECT date_trunc('day', min({ts}))::date FROM {raw}
WHERE {ts} >= %(from_start)s AND {ts} < %(cutoff)s
"""
)
# Rows before the first partition: never rolled up, so never deleted; reported once per run as a count.
ROWS_BEFORE_START = sql.SQL("SELECT count(*) FROM {raw} WHERE {ts} < %(start)s")

_DELETE_BATCH = """
WITH batch AS MATERIALIZED (
    SELECT ctid AS row_id, {ts} AS ts, {id} AS id FROM {raw}
    WHERE {ts} >= %(from_ts)s AND {ts} < %(day_end)s {after}
    ORDER BY {ts}, {id}
    LIMIT %(batch)s
),
gone AS (
    DELETE FROM {raw} WHERE ctid = ANY(ARRAY(SELECT row_id FROM batch)) RETURNING 1
)
SELECT (SELECT count(*) FROM gone), last.ts, last.id
FROM (SELECT ts, id FROM batch ORDER BY ts DESC, id DESC LIMIT 1) AS last
"""
DELETE_FIRST_BATCH = sql.SQL(_DELETE_BATCH.replace("{after}", ""))
DELETE_NEXT_BATCH = sql.SQL(_DELETE_BATCH.replace("{after}", "AND ({ts}, {id}) > (%(after_ts)s, %(after_id)s)"))


def compose(statement: sql.SQL, raw_table: str, ts: str, id_column: str) -> sql.Composed:
    return statement.format(raw=sql.Identifier(raw_table), ts=sql.Identifier(ts), id=sql.Identifier(id_column))


# Aggregates: whole old days only. system_metric_daily has one row per day, deleted in id ranges;
# client_daily_usage is deleted one `date` (the leading primary-key column) per transaction.
OLD_METRIC_DAILY_IDS = """
SELECT min(id), max(id), count(*) FROM system_metric_daily WHERE day < %(cutoff)s
"""
DELETE_METRIC_DAILY_BATCH = """
DELETE FROM system_metric_daily WHERE id >= %(lo)s AND id < %(hi)s AND day < %(cutoff)s
"""
OLDEST_USAGE_DAY = """
SELECT min(date) FROM client_daily_usage WHERE date < %(cutoff_day)s
"""
DELETE_USAGE_DAY = """
DELETE FROM client_daily_usage WHERE date = %(day)s
"""
