"""Every SQL statement of `retention_pruning`: keyset deletes of one raw day, whole old aggregate days.

Raw rows are deleted one UTC day at a time, only when the day's fingerprint equals the rollup ledger's
(retention/assets.py). Inside a day, rows go in batches walked by keyset on the timestamp through its
index (BATCH_END, DELETE_RANGE below), so the number of statements is rows / batch_size whatever the id
values are (integer, uuid, text/cuid are never compared), and a row far away in id space costs nothing.
Tables and columns come from the rollup's spec (psycopg.sql identifiers); values are parameters. Rows with a
NULL key column (`{holdable}` is false: no aggregate row can hold them) are never deleted nor walked to.
"""

from __future__ import annotations

from psycopg import sql

# The first raw day on or after `from_start` and before `cutoff` that still has rows (timestamp index).
NEXT_RAW_DAY = sql.SQL(
    """
SELECT {day_of_min} FROM {raw}
WHERE {ts} >= %(from_start)s AND {ts} < %(cutoff)s AND {holdable}
"""
)
# Rows before the first partition: never rolled up, so never deleted; reported once per run as a count.
ROWS_BEFORE_START = sql.SQL("SELECT count(*) FROM {raw} WHERE {ts} < %(start)s")

# A day's rows go in batches of at most `batch` rows, each a plain range DELETE on the timestamp index:
# BATCH_END gives the timestamp of the (batch+1)-th row from `from_ts` on, in index order (or NULL when
# fewer are left), and DELETE_RANGE deletes [from_ts, that timestamp): at most `batch` rows, since the
# (batch+1)-th row and any tied with it stay for the next batch. Measured at 166k samples a day: 0.63 us a
# row at 20,000 rows a batch, like one plain DELETE of the day (0.67 us), where selecting the batch's ctids
# in (ts, id) order and deleting them by TID cost 1.5-1.8 us a row.
BATCH_END = sql.SQL(
    """
SELECT {ts} FROM {raw}
WHERE {ts} >= %(from_ts)s AND {ts} < %(day_end)s AND {holdable}
ORDER BY {ts}
OFFSET %(batch)s LIMIT 1
"""
)
DELETE_RANGE = sql.SQL("DELETE FROM {raw} WHERE {ts} >= %(from_ts)s AND {ts} < %(to_ts)s AND {holdable}")
# More than `batch` rows share one timestamp (e.g. a bulk import in one transaction: DEFAULT now() is the
# transaction's start time): those rows, `batch` at a time, by TID. The rows this transaction deleted are
# invisible to its next statement, so each batch takes the next ones; no id order is needed, so any id
# type works.
DELETE_TIED_BATCH = sql.SQL(
    """
DELETE FROM {raw}
WHERE ctid = ANY(ARRAY(SELECT ctid FROM {raw} WHERE {ts} = %(at_ts)s AND {holdable} LIMIT %(batch)s))
"""
)

# A proved day's rows in one range of heap blocks [from_tid, to_tid) (retention/block_pieces.py): a TID
# Range Scan (PostgreSQL 14+) reads only those blocks; the timestamp range and the holdable condition keep
# every other row, so the blocks may hold other days' rows too.
DELETE_BLOCKS = sql.SQL(
    """
DELETE FROM {raw}
WHERE ctid >= %(from_tid)s::tid AND ctid < %(to_tid)s::tid
  AND {ts} >= %(from_ts)s AND {ts} < %(to_ts)s AND {holdable}
"""
)
# Whether the server has TID Range Scans (14+; before, a ctid range is a filter on a whole-table scan), its
# page size (the most tuples a heap page can hold follows from it), and whether the raw table is a plain
# table without children (a ctid range would apply to each partition or child table).
BLOCK_FACTS = """
SELECT current_setting('server_version_num')::int, current_setting('block_size')::int,
       coalesce((SELECT c.relkind = 'r' AND NOT c.relhassubclass FROM pg_class c
                 WHERE c.oid = to_regclass(%(table)s)), false)
"""


EVERY_ROW = sql.SQL("true")


def compose(
    statement: sql.SQL, raw_table: str, ts: str, id_column: str, ts_type: str = "timestamp",
    holdable: sql.Composable = EVERY_ROW,
) -> sql.Composed:
    """The statement for one raw table; `{day_of_min}` is the UTC day of the smallest timestamp (a
    `timestamptz` column is read in UTC whatever the session's TimeZone). `holdable`: the condition of rows
    an aggregate row can hold (rollups/held_rows.py); a row with a NULL key column is never deleted, never
    counted as a day to prune."""
    day_of_min = (
        sql.SQL("(min({}) AT TIME ZONE 'UTC')::date") if ts_type == "timestamptz"
        else sql.SQL("date_trunc('day', min({}))::date")
    ).format(sql.Identifier(ts))
    return statement.format(
        raw=sql.Identifier(raw_table), ts=sql.Identifier(ts), id=sql.Identifier(id_column), day_of_min=day_of_min,
        holdable=holdable,
    )

# Aggregates: whole old days only, one day per transaction; the statements come from each rollup's spec
# (`BoundSql.aggregate_day_sql`: the aggregate may be in our own schema).
