"""What a rollup is, as one value: `RollupSpec`, declared once per rollup and iterated by everything else.

Jobs, sensors, checks, retention, capture, grants and the ledger read a rollup's tables, columns, SQL,
privileges and lock from its spec through the registry (rollups/registry.py), never from name-keyed dicts.
Each spec comes from one YAML instance under erp_pipelines/defs/rollups/ (rollups/component.py), so adding
a rollup is one file there (docs/rollups.md). Its asset is built by the one machine every rollup shares
(rollups/machine.py) from the spec and its `body`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg
import psycopg
from psycopg import sql

from erp_pipelines.dbwork import lock_key
from erp_pipelines.partitions import day_bounds
from erp_pipelines.rollups import row_hash
from erp_pipelines.rollups.ledger import Fingerprint

RAW_ROW_HASH_MARK = "{raw_row_hash}"  # where a write statement (rollups/sql.py) takes the per-row hash

GROUP = "rollups"
ERP_DB_POOL = "erp_db"
# What every asset of the domain declares: a lost connection (DatabaseUnavailable) is retried with backoff;
# user errors are Failure(allow_retries=False) and are not.
RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

# The day's raw fingerprint: row count and the exact (numeric) SUM of a 64-bit hash of each row over the id
# and every column the rollup reads (rollups/row_hash.py builds the per-row expression for the table's
# column types; `RollupSpec.bind` puts the same expression into the rollup's write statement). A sum is
# order-independent; unlike XOR, two equal rows do not cancel out; as numeric it never overflows. Any
# INSERT, UPDATE of a read column, or DELETE changes it (up to a 2^-64 hash collision).
FINGERPRINT_TEMPLATE = """
SELECT count(*) AS raw_rows,
       coalesce(sum({row_hash}), 0) AS raw_hash{span}
FROM {raw_table}
WHERE {ts} >= %(day_start)s AND {ts} < %(day_end)s
"""
# What retention's verified path adds to the fingerprint: where the range's first and last rows in time lie
# (two probes of the timestamp index), the heap blocks it then deletes by (retention/block_pieces.py).
# min(ctid)/max(ctid) over every row would be exact but cost ~5 ms more a day on the bench's data (one day's
# statement, timed alternately on one connection: 23.8 ms against 18.5 ms without a span, 2026-12-05); rows
# lying outside the probed blocks are found by the count and walked.
FINGERPRINT_SPAN = """,
       (SELECT ctid::text FROM {raw_table} WHERE {ts} >= %(day_start)s AND {ts} < %(day_end)s
        ORDER BY {ts} LIMIT 1) AS first_tid,
       (SELECT ctid::text FROM {raw_table} WHERE {ts} >= %(day_start)s AND {ts} < %(day_end)s
        ORDER BY {ts} DESC LIMIT 1) AS last_tid"""


@dataclass(frozen=True)
class RollupSpec:
    """One daily rollup of one raw table into one aggregate table (the ERP's, or one in our own schema).

    Stable fields other modules rely on: `aggregate_table` (== `asset_key`), `raw_table`, `ts_column`,
    `id_column`, `raw_columns`.
    """

    aggregate_table: str
    aggregate_day_column: str
    aggregate_key: tuple[str, ...]
    raw_table: str
    ts_column: str
    id_column: str
    raw_columns: tuple[str, ...]
    raw_spec: dg.AssetSpec
    description: str
    # table -> privileges the rollup needs on it (named in MissingGrant, listed in docs/privileges.md)
    privileges: Mapping[str, str]
    # privileges retention needs on the raw and aggregate tables
    retention_privileges: Mapping[str, str]
    reconciliation_check: str
    check_names: tuple[str, ...]
    # per-day SQL (rollups/sql.py); %(day_start)s / %(day_end)s are naive UTC midnights, %(day)s the date
    replace_day_sql: str  # replace the day's aggregate from its raw rows; RAW_ROW_HASH_MARK: see bind()
    reconcile_day_sql: str  # the aggregate against a recomputation, every column, and the fingerprint
    # runs the bound reconcile_day_sql and says what its row means (retention's one read of a day)
    read_reconciliation: ReadReconciliation
    aggregate_exists_sql: str  # a row if the day has an aggregate
    delete_day_sql: str  # delete the day's aggregate (the ERP deleted every raw row of a ledgered day)
    raw_below_aggregate_sql: str  # only for days without a ledger entry (see steps.py)
    # -- what the declared instances (rollups/component.py) add; the defaults are the two original rollups'
    ts_type: str = "timestamp"  # or "timestamptz": the day bounds are then sent as UTC instants
    # where retention takes the raw table's retention from (retention/assets.py RAW_RETENTION_SOURCES):
    # "metricsRetentionDays" (system_health_config), "usage_event_retention_days" (run config, unset: kept)
    # or None (raw rows kept)
    raw_retention: str | None = None
    # the per-connection statements, when the spec builds them itself (declared rollups); None: bind() below
    binder: Callable[[psycopg.Connection], BoundSql] | None = None
    # anything else a rollup's own step reads (a declared rollup: its declaration)
    extra: Mapping[str, Any] = field(default_factory=dict)
    # raw columns that become part of the aggregate's key: a raw row with a NULL in one of them can enter no
    # aggregate row, so retention never deletes it (rollups/held_rows.py)
    raw_key_columns: tuple[str, ...] = ()
    # what the rollup's asset step does differently, as data (rollups/machine.py RollupBody: run config,
    # per-day write, own checks and their verdicts, own metadata keys); `machine.build_asset` runs it
    body: Any = None
    # retention's bounded reading of a day (optional; None: the day is read by `reconcile_day_sql` in one
    # statement): `day_partials_sql` reads one time range [%(from_ts)s, %(to_ts)s) of the raw table into
    # partial rows that add up: its first column is a group key, the others sums (RAW_ROW_HASH_MARK as
    # above); `reconcile_from_parts_sql` is
    # `reconcile_day_sql` computed from those rows, sent back as one array per column named as the partial
    # rows' columns; it returns the very row `read_reconciliation` reads
    day_partials_sql: str | None = None
    reconcile_from_parts_sql: str | None = None
    # the hash of the day's aggregate row(s) (%(day)s / %(day_start)s), when the rollup's write verifies its
    # rows against an independent recomputation and reports that hash (`DayWrite.aggregate_hash`): the ledger
    # records it, and retention then proves a day from the fingerprint and this hash alone (None: retention
    # always recomputes)
    aggregate_hash_sql: str | None = None

    @property
    def asset_key(self) -> str:
        return self.aggregate_table

    @property
    def lock_key(self) -> str:
        """The advisory lock every writer of the aggregate and of the raw table takes (dbwork)."""
        return lock_key(self.aggregate_table)

    @property
    def hashed_columns(self) -> tuple[str, ...]:
        """The columns of the raw fingerprint: the id, then every column the rollup reads."""
        return (self.id_column, *self.raw_columns)

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """UTC midnight of the day and of the next one, as the raw time column compares them: naive for a
        `timestamp` column (no time zone involved), UTC-aware for `timestamptz` (whatever the session's
        TimeZone)."""
        start, end = day_bounds(day)
        if self.ts_type == "timestamptz":
            return start.replace(tzinfo=UTC), end.replace(tzinfo=UTC)
        return start, end

    def observation_sql(self) -> sql.Composed:
        """Row count, newest timestamp and highest id of the raw table (erp_raw_tables_sensor)."""
        return sql.SQL("SELECT count(*), max({ts}), coalesce(max({id}), 0) FROM {raw}").format(
            ts=sql.Identifier(self.ts_column), id=sql.Identifier(self.id_column),
            raw=sql.Identifier(self.raw_table),
        )

    def aggregate_day_statements(self, aggregate: sql.Composable) -> tuple[sql.Composed, sql.Composed]:
        """(oldest aggregate day before %(cutoff_day)s, delete one %(day)s) of the aggregate table."""
        day = sql.Identifier(self.aggregate_day_column)
        return (
            sql.SQL("SELECT min({day}) FROM {agg} WHERE {day} < %(cutoff_day)s").format(day=day, agg=aggregate),
            sql.SQL("DELETE FROM {agg} WHERE {day} = %(day)s").format(day=day, agg=aggregate),
        )

    def fingerprint_sql(self, raw_row_hash: str, span: bool = False) -> sql.Composed:
        """(raw_rows, raw_hash) of one day of the raw table, see FINGERPRINT_TEMPLATE; with `span`, also the
        ctid of its first and last row in time, as text (FINGERPRINT_SPAN)."""
        names = {"raw_table": sql.Identifier(self.raw_table), "ts": sql.Identifier(self.ts_column)}
        return sql.SQL(FINGERPRINT_TEMPLATE).format(
            row_hash=sql.SQL(raw_row_hash),  # noqa: S608 - built by row_hash.row_hash_sql from the catalog
            span=sql.SQL(FINGERPRINT_SPAN if span else "").format(**names),
            **names,
        )

    def bind(self, conn: psycopg.Connection) -> BoundSql:
        """The per-day statements that hash raw rows, with the raw table's per-row hash put in (one catalog
        read, rollups/row_hash.py): the write statement, the fingerprint and the reconciliation use the very
        same expression. A declared rollup builds its statements itself (`binder`)."""
        if self.binder is not None:
            return self.binder(conn)
        expression = row_hash.for_table(conn, self.raw_table, self.hashed_columns)
        return BoundSql(
            replace_day_sql=self.replace_day_sql.replace(RAW_ROW_HASH_MARK, expression),
            fingerprint_sql=self.fingerprint_sql(expression),
            reconcile_day_sql=self.reconcile_day_sql.replace(RAW_ROW_HASH_MARK, expression),
            aggregate_exists_sql=self.aggregate_exists_sql,
            delete_day_sql=self.delete_day_sql,
            raw_below_aggregate_sql=self.raw_below_aggregate_sql,
            aggregate_day_sql=self.aggregate_day_statements(sql.Identifier(self.aggregate_table)),
            day_partials_sql=(
                None if self.day_partials_sql is None else self.day_partials_sql.replace(RAW_ROW_HASH_MARK, expression)
            ),
            reconcile_from_parts_sql=self.reconcile_from_parts_sql,
            aggregate_hash_sql=self.aggregate_hash_sql,
            fingerprint_span_sql=self.fingerprint_sql(expression, span=True),
        )


@dataclass(frozen=True)
class Reconciliation:
    """One read of a raw day (the bound reconciliation statement): its fingerprint, and why its aggregate
    differs from an independent recomputation from the raw rows (None: it does not)."""

    fingerprint: Fingerprint
    mismatch: str | None
    # raw rows with a NULL key column (kept raw by retention); None: not read (retention counts them itself)
    null_key_rows: int | None = None


@dataclass(frozen=True)
class BoundSql:
    """A rollup's statements that hash raw rows, ready for one connection (`RollupSpec.bind`)."""

    replace_day_sql: str
    fingerprint_sql: sql.Composed
    reconcile_day_sql: str  # also returns the day's fingerprint (its last two columns: rollups/sql.py)
    aggregate_exists_sql: str | sql.Composed
    delete_day_sql: str | sql.Composed
    raw_below_aggregate_sql: str | sql.Composed
    # (oldest aggregate day before %(cutoff_day)s, delete the aggregate rows of %(day)s): retention
    aggregate_day_sql: tuple[sql.Composed, sql.Composed]
    # the statements a declared rollup's write step runs besides these (rollups/declared_sql.py)
    more: Mapping[str, Any] = field(default_factory=dict)
    # retention's bounded reading of a day (RollupSpec.day_partials_sql); None: one statement per day
    day_partials_sql: str | None = None
    reconcile_from_parts_sql: str | None = None
    aggregate_hash_sql: str | None = None  # RollupSpec.aggregate_hash_sql
    # the fingerprint with its rows' ctid span (RollupSpec.fingerprint_sql(span=True)): retention's deletes
    # by heap blocks on the verified path (retention/block_pieces.py); None: by timestamp only
    fingerprint_span_sql: sql.Composed | None = None


# (connection in the day's snapshot, the spec's bound statements, the day's parameters) -> the reading
ReadReconciliation = Callable[[psycopg.Connection, BoundSql, dict[str, Any]], Reconciliation]
