"""`retention_pruning`: delete old raw rows whose aggregate provably holds them, and very old aggregates.

Order and rules:
1. Read and validate `system_health_config` row 1 (the same `validate_config` the health-config asset
   uses). Missing row or any invalid value: raise ErpPipelinesError before anything is deleted.
2. For every rollup of the registry whose raw table has a retention (`system_metric_samples`:
   `metricsRetentionDays`; `client_usage_events`: `usage_event_retention_days`, only when set), each UTC
   day before the cutoff that still has raw rows, from the first partition on (rows before it are never
   rolled up, so never deleted; counted in `rows_before_start_date`), in ONE short transaction:
   - the rollup's advisory lock FIRST (dbwork.write_transaction, bounded by lock_timeout: a day that waits
     longer is skipped and retried next run), THEN the REPEATABLE READ snapshot, so the snapshot sees the
     rollup it may have waited for;
   - the day's current fingerprint (rows + exact hash of every column the rollup reads) must equal the one
     the rollup ledger recorded with the aggregate, AND the aggregate must provably equal an independent
     recomputation from those rows. Two proofs:
     - the rollup's write verified the aggregate and the ledger holds its seal (`_prove_verified`): the
       fingerprint is read alone, in time slices that also probe where their first and last rows in time
       lie, and the row's hash now, sealed with it, must equal that seal. The rows then go by ranges of heap
       blocks between those, at most `batch_size` rows a statement (retention/block_pieces.py); a slice they
       leave rows of, or whose rows are spread thin, is walked as below;
     - otherwise (`_prove_recomputed`) the day is cut into pieces of at most `batch_size` rows walked by
       timestamp (retention/sql.py BATCH_END; `_segments`), and the fingerprint and the recomputation come
       from ONE read of the day (the bound reconciliation statement also sums the per-row hash), in
       statements of at most READ_BATCHES pieces when the rollup's reconciliation adds up from partial rows
       (`_read_day`), else in one; the pieces are then deleted;
   - the count deleted must equal the fingerprint's, and the day is recorded in `pruned_days`; COMMIT.
   A day that fails a test is kept and listed in `skipped_days`; when its raw rows changed since the
   rollup, an invalidation mark asks the late-data sensor for a refresh. A day already pruned whose raw
   rows are late arrivals is never deleted (`late_rows_kept`): those rows are in no aggregate.
3. Aggregates of every rollup, days older than `aggregateRetentionDays`: whole days, with their ledger
   entries. Which raw table has which retention is its rollup instance's `raw_retention` (no per-rollup
   code here).

The snapshot makes the test and the delete see the same rows: a row committed meanwhile is invisible to
it, so it is not deleted (it changes the fingerprint; the next run skips the day until it is re-rolled).
A day is all-or-nothing. DELETE takes only ROW EXCLUSIVE on the table, which does not conflict with the
app's INSERTs.

"today" is the wall clock's UTC day unless the run config sets `today` (replays and tests only; never a
future day). Errors: a lost connection is `DatabaseUnavailable` (retried), a missing privilege names the
GRANT to run (dbwork.erp_connection).
"""

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import dagster as dg
import psycopg
from psycopg import sql as psql
from pydantic import Field

from erp_pipelines.capture.triggers import SKIP_SETTING
from erp_pipelines.dbwork import ADVISORY_XACT_LOCK, erp_connection, step_errors, write_transaction
from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.health_config import read_config, validate_config
from erp_pipelines.own_schema import own_schema_name
from erp_pipelines.partitions import DAILY_PARTITIONS
from erp_pipelines.resources import ErpDatabase
from erp_pipelines.retention import block_pieces, sql
from erp_pipelines.retention.today import guard_today
from erp_pipelines.rollups import held_rows, ledger
from erp_pipelines.rollups.registry import ROLLUP_ASSETS, ROLLUPS
from erp_pipelines.rollups.spec import ERP_DB_POOL, RETRY_POLICY, BoundSql, Reconciliation, RollupSpec
from erp_pipelines.rollups.usage_daily import DEFAULT_EVENT_CATEGORIES, category_params

GROUP = "retention"
USAGE_RETENTION_RANGE = (1, 1825)
# Privileges retention needs, per table (named in the error when one is missing).
RETENTION_PRIVILEGES = {
    "system_health_config": "SELECT",
    **{table: grant for spec in ROLLUPS for table, grant in spec.retention_privileges.items()},
    **ledger.OWN_PRIVILEGES,
}


CAPTURE_OFF = "SELECT set_config(%(setting)s, 'off', true)"


class RetentionConfig(dg.Config):
    usage_event_retention_days: int | None = Field(
        default=None,
        description="Delete raw client_usage_events older than this many days (only days whose "
        "fingerprint equals the rollup ledger's). Unset (the default): raw usage events are kept.",
    )
    batch_size: int = Field(
        default=15000, description="Rows per DELETE statement at most (ranges of heap blocks for a day the rollup "
        "sealed, else batches walked by timestamp): at 15,000 the longest statement of a run took 30-63 ms and 99 % "
        "took under 35 ms on a shared 2-core machine (bench/results.md)."
    )
    event_categories: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_EVENT_CATEGORIES.items()},
        description="The event_type mapping client_daily_usage was built with (its reconciliation uses it).",
    )
    today: str | None = Field(
        default=None,
        description="The UTC day (YYYY-MM-DD) the retention windows count back from. Unset (the default): "
        "the wall clock's current UTC day. For replays and tests only; a future day is refused.",
    )


class _Skip(Exception):
    """A day that must not be pruned now; the reason goes into the metadata."""


@dataclass
class PruneReport:
    """What retention did to one raw table."""

    deleted: int = 0
    days_pruned: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    late_rows_kept: dict[str, int] = field(default_factory=dict)
    null_key_rows_kept: dict[str, int] = field(default_factory=dict)  # rows with a NULL key column: in no aggregate
    refresh_requested: list[str] = field(default_factory=list)
    statements: int = 0
    rows_before_start: int = 0


def _load_settings(conn: psycopg.Connection, schema: str, config: RetentionConfig) -> tuple[int, int]:
    where = f"{schema}.system_health_config, row id 1"
    try:
        cfg = read_config(conn, schema)
    except psycopg.errors.UndefinedTable:
        conn.rollback()
        cfg = None
    if cfg is None:
        raise ErpPipelinesError(
            "There is no retention configuration, so nothing is deleted.",
            where=where,
            fix="Materialize the system_health_config asset (it inserts the default row) and run again.",
        )
    problems = validate_config(cfg)
    lo, hi = USAGE_RETENTION_RANGE
    days = config.usage_event_retention_days
    if days is not None and not lo <= days <= hi:
        problems.append(("usage_event_retention_days", f"must be from {lo} to {hi} days, is {days}"))
    elif (
        days is not None
        and isinstance(cfg.aggregate_retention_days, int)
        and days > cfg.aggregate_retention_days
    ):
        problems.append(
            (
                "usage_event_retention_days",
                f"({days}) must not exceed aggregateRetentionDays ({cfg.aggregate_retention_days}): "
                "raw events would outlive the aggregates they are reconciled against",
            )
        )
    if config.batch_size < 1:
        problems.append(("batch_size", "must be at least 1"))
    if problems:
        raise ErpPipelinesError(
            "The retention configuration is invalid, so nothing is deleted: "
            + "; ".join(f"{key} {message}" for key, message in problems)
            + ".",
            where=where + " (and the run config of retention_pruning)",
            fix="Correct the values (e.g. re-materialize system_health_config or UPDATE the row) and run again.",
        )
    return cfg.metrics_retention_days, cfg.aggregate_retention_days


@dataclass(frozen=True)
class Segment:
    """One piece of a raw day, in timestamp order: the rows with `from_ts <= ts < to_ts`. A `tied` segment
    holds the rows of one timestamp shared by more than a batch (to_ts is one microsecond later, the
    timestamp types' resolution): they are deleted `batch` at a time by TID."""

    from_ts: datetime
    to_ts: datetime
    tied: bool = False


ONE_MICROSECOND = timedelta(microseconds=1)
# Retention's read of a day with bounded pieces (RollupSpec.day_partials_sql) reads up to this many delete
# batches per statement: a statement of ~60k rows at the default batch_size, at most 32 ms on the shared
# 2-core machine (bench/results.md, longest retention statement), however large the day.
READ_BATCHES = 4
# The fingerprint alone (a day the rollup verified, `_prove_verified`) is about half the work a row: time
# slices sized for up to this many batches each, ~180k rows at the default batch_size (a side measurement on
# the bench's data: 20-25 ms for a whole day of 166,667 samples; bench/results.md has the longest retention
# statement).
FINGERPRINT_READ_BATCHES = 12


def _segments(conn: psycopg.Connection, spec: RollupSpec, day_start: datetime, day_end: datetime,
              batch: int) -> list[Segment]:
    """The day cut into pieces of at most `batch` rows (retention/sql.py BATCH_END), walked once in the
    day's snapshot, before the day is read: the read and the deletes then cover the very same pieces."""
    batch_end = sql.compose(sql.BATCH_END, spec.raw_table, spec.ts_column, spec.id_column,
                            holdable=held_rows.holdable(spec))
    segments: list[Segment] = []
    from_ts = day_start
    while True:
        row = conn.execute(batch_end, {"from_ts": from_ts, "day_end": day_end, "batch": batch}).fetchone()
        # a timestamptz comes back in the session's TimeZone; compared and stepped in UTC (in a zone with
        # daylight saving, local wall-clock times repeat an hour each autumn)
        to_ts = day_end if row is None else _in_utc(row[0])
        if to_ts > from_ts:
            segments.append(Segment(from_ts, to_ts))
            if row is None:
                return segments
            from_ts = to_ts
        else:  # more than `batch` rows at exactly from_ts
            segments.append(Segment(from_ts, from_ts + ONE_MICROSECOND, tied=True))
            from_ts += ONE_MICROSECOND
            if from_ts >= day_end:
                return segments


def _in_utc(ts: datetime) -> datetime:
    """An aware timestamp in UTC (a naive one, of a `timestamp` column, as it is)."""
    return ts if ts.tzinfo is None else ts.astimezone(UTC)


def _read_day(conn: psycopg.Connection, spec: RollupSpec, bound: BoundSql, params: dict[str, Any],
              segments: list[Segment]) -> Reconciliation:
    """The day's fingerprint and reconciliation (`spec.read_reconciliation`): in one statement, or, when the
    rollup can add up partial rows (METRIC_DAY_PARTIALS: the first column the group key, the others sums),
    in statements of at most READ_BATCHES pieces whose rows are added up here per group key and sent to
    `reconcile_from_parts_sql` as one array per column. Same snapshot, same rows, same verdict (tested
    against the one-statement reading in test_retention_pieces.py)."""
    if bound.day_partials_sql is None or bound.reconcile_from_parts_sql is None:
        return spec.read_reconciliation(conn, bound, params)
    names: list[str] = []
    merged: dict[Any, list[Any]] = {}  # group key -> the group's sums so far
    for first in range(0, len(segments), READ_BATCHES):
        piece = segments[first:first + READ_BATCHES]
        cursor = conn.execute(bound.day_partials_sql, {"from_ts": piece[0].from_ts, "to_ts": piece[-1].to_ts})
        names = [d.name for d in cursor.description or ()]
        for key, *sums in cursor.fetchall():
            before = merged.get(key)
            merged[key] = sums if before is None else [_add(a, b) for a, b in zip(before, sums, strict=True)]
    # one row per group key, however many pieces: the arrays grow with the day's groups, not its rows
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for key, sums in merged.items():
        for name, value in zip(names, (key, *sums), strict=True):
            columns[name].append(value)
    parts = replace(bound, reconcile_day_sql=bound.reconcile_from_parts_sql)
    return spec.read_reconciliation(conn, parts, {**params, **columns})


def _add(a: Any, b: Any) -> Any:
    """SQL's sum of two partial sums: NULL (no value in that piece) adds nothing; exact for int/Decimal."""
    return b if a is None else a if b is None else a + b


def _delete_day(conn: psycopg.Connection, spec: RollupSpec, segments: list[Segment], batch: int) -> tuple[int, int]:
    """Delete the day's pieces (retention/sql.py); returns (rows deleted, DELETE statements). Runs in the
    day's snapshot, so what it deletes is what the fingerprint counted."""
    keyed = held_rows.holdable(spec)
    delete_range = sql.compose(sql.DELETE_RANGE, spec.raw_table, spec.ts_column, spec.id_column, holdable=keyed)
    delete_tied = sql.compose(sql.DELETE_TIED_BATCH, spec.raw_table, spec.ts_column, spec.id_column, holdable=keyed)
    deleted = statements = 0
    for segment in segments:
        if not segment.tied:
            deleted += conn.execute(delete_range, {"from_ts": segment.from_ts, "to_ts": segment.to_ts}).rowcount
            statements += 1
            continue
        while True:  # the tied rows, `batch` at a time: each statement takes the next ones
            n = conn.execute(delete_tied, {"at_ts": segment.from_ts, "batch": batch}).rowcount
            deleted += n
            statements += 1
            if n < batch:
                break
    return deleted, statements


def _prune_day(
    conn: psycopg.Connection, spec: RollupSpec, bound: BoundSql, day: date, params: dict[str, Any], batch: int,
    facts: block_pieces.BlockFacts,
) -> tuple[int, int, int]:
    """Inside the day's transaction (lock taken, then snapshot): test, delete, record. Raises _Skip.
    The day is proved before any of its rows is deleted: by the rollup's seal, then deleted by heap blocks
    (`_prove_verified`, retention/block_pieces.py), or by the recomputation over pieces walked by timestamp,
    which are then deleted (`_prove_recomputed`)."""
    # our own deletes mark nothing in the invalidation log (a pruned day is never refreshed)
    conn.execute(CAPTURE_OFF, {"setting": SKIP_SETTING})
    pruned = ledger.read_pruned(conn, spec.raw_table, [day])
    recorded = ledger.read_ledger(conn, spec.aggregate_table, [day]).get(day)
    if day in pruned:  # decided by the rows' number alone: the cheaper read
        raise _Late(held_rows.holdable_rows(conn, spec, params["day_start"], params["day_end"]))
    if recorded is None:
        # never rolled up, or rolled up while empty and then written with the triggers bypassed (a restore,
        # logical replication, session_replication_role = replica): ask for a refresh (the late-data sensor
        # requests it when the partition was materialized) unless a mark already asks
        fp = ledger.fingerprint(conn, bound.fingerprint_sql, params["day_start"], params["day_end"])
        ledger.mark_day_once(conn, spec.raw_table, day)
        raise _Refresh(f"{fp.raw_rows} raw row(s) but no ledger entry of {spec.aggregate_table} (not rolled up, or "
                       "rolled up while empty); refresh requested")
    proof = _prove_day(conn, spec, bound, day, params, recorded, batch)
    fp, kept = proof.fingerprint, proof.kept
    if proof.spans is not None:
        deleted, statements = _delete_by_blocks(conn, spec, proof.spans, facts, batch)
    else:
        deleted, statements = _delete_day(conn, spec, proof.segments, batch)
    if deleted != fp.raw_rows - kept:  # cannot happen in one snapshot; never commit a partial day
        raise RuntimeError(
            f"{spec.raw_table} {day}: deleted {deleted} rows, fingerprint says {fp.raw_rows} ({kept} kept)"
        )
    ledger.record_pruned(conn, spec.raw_table, day, spec.aggregate_table, deleted, Decimal(fp.raw_hash))
    return deleted, statements, kept


@dataclass(frozen=True)
class Proof:
    """That a day's aggregate holds its raw rows (`_prove_day`), and what its deletes go by."""

    fingerprint: ledger.Fingerprint
    kept: int  # rows with a NULL key column: in no aggregate row, they stay raw (held_rows.py)
    spans: list[block_pieces.Span] | None = None  # verified: deleted by heap blocks (block_pieces.plan)
    segments: list[Segment] = field(default_factory=list)  # recomputed: deleted by these walked pieces


def _prove_day(
    conn: psycopg.Connection, spec: RollupSpec, bound: BoundSql, day: date, params: dict[str, Any],
    recorded: ledger.LedgerEntry, batch: int,
) -> Proof:
    """The day's proof, in its snapshot: the verified one when it applies, else the recomputation. Raises
    _Refresh (the rows changed since the rollup) or _Skip (the aggregate does not hold them)."""
    verified = _prove_verified(conn, spec, bound, day, params, recorded, batch)
    if verified is not None:
        fp, spans = verified
        return Proof(fp, held_rows.null_key_rows(conn, spec, params["day_start"], params["day_end"]), spans=spans)
    segments = _segments(conn, spec, params["day_start"], params["day_end"], batch)
    fp, kept = _prove_recomputed(conn, spec, bound, day, params, segments, recorded)
    return Proof(fp, kept, segments=segments)


def _prove_verified(
    conn: psycopg.Connection, spec: RollupSpec, bound: BoundSql, day: date, params: dict[str, Any],
    recorded: ledger.LedgerEntry, batch: int,
) -> tuple[ledger.Fingerprint, list[block_pieces.Span]] | None:
    """The proof when the rollup's write verified the aggregate against an independent recomputation
    (`recorded.aggregate_hash`, the seal of the row's hash and the fingerprint it was verified for): the day's
    fingerprint now equals the ledger's AND seals with the aggregate row's hash now (`bound.aggregate_hash_sql`)
    to the recorded seal. The rows are those the verified row was computed from, and the row is that row: no
    recomputation needed. The fingerprint is read in time slices with each slice's ctid span
    (block_pieces.read_spans: at most FINGERPRINT_READ_BATCHES x batch rows a slice when the day's rows are
    spread evenly in time), which the deletes then go by (block_pieces.plan).

    Returns (fingerprint, spans), None when this proof does not apply (an older ledger entry, a rollup whose
    write does not verify, an aggregate changed since: the recomputation decides), or raises _Refresh."""
    if recorded.aggregate_hash is None or bound.aggregate_hash_sql is None:
        return None
    slices = block_pieces.time_slices(params["day_start"], params["day_end"], recorded.raw_rows,
                                      FINGERPRINT_READ_BATCHES * batch)
    # a rollup without the span statement: the same slices without blocks, walked by timestamp
    spans = block_pieces.read_spans(conn, bound.fingerprint_span_sql or bound.fingerprint_sql, slices)
    fp = block_pieces.fingerprint(spans)
    _same_rows(conn, spec, day, recorded, fp)
    row = conn.execute(bound.aggregate_hash_sql, params).fetchone()
    if row is None or not recorded.verifies(fp, row[0]):
        return None
    return fp, spans


def _prove_recomputed(
    conn: psycopg.Connection, spec: RollupSpec, bound: BoundSql, day: date, params: dict[str, Any],
    segments: list[Segment], recorded: ledger.LedgerEntry,
) -> tuple[ledger.Fingerprint, int]:
    """The proof for any other day: its fingerprint and the independent recomputation from ONE read of its
    rows over the walked pieces (`_read_day`). Returns (fingerprint, rows with a NULL key column, which stay
    raw) or raises _Refresh / _Skip."""
    reading = _read_day(conn, spec, bound, params, segments)
    fp, why = reading.fingerprint, reading.mismatch
    _same_rows(conn, spec, day, recorded, fp)
    if why:
        raise _Skip(f"{why} (re-materialize the partition)")
    # rows with a NULL key column are in no aggregate row: they stay raw (held_rows.py)
    kept = reading.null_key_rows
    if kept is None:
        kept = held_rows.null_key_rows(conn, spec, params["day_start"], params["day_end"])
    return fp, kept


def _delete_by_blocks(conn: psycopg.Connection, spec: RollupSpec, spans: list[block_pieces.Span],
                      facts: block_pieces.BlockFacts, batch: int) -> tuple[int, int]:
    """A verified day's deletes: its block pieces (block_pieces.plan), then every slice they left rows of,
    walked by timestamp (the walk sees only the rows this transaction has not deleted); returns (rows
    deleted, DELETE statements)."""
    pieces = block_pieces.plan(spans, facts, batch)
    delete_blocks = sql.compose(sql.DELETE_BLOCKS, spec.raw_table, spec.ts_column, spec.id_column,
                                holdable=held_rows.holdable(spec))
    by_slice = block_pieces.delete_pieces(conn, delete_blocks, pieces)
    deleted, statements = sum(by_slice.values()), len(pieces)
    for from_ts, to_ts in block_pieces.short_slices(spans, by_slice):
        n, k = _delete_day(conn, spec, _segments(conn, spec, from_ts, to_ts, batch), batch)
        deleted, statements = deleted + n, statements + k
    return deleted, statements


def _same_rows(conn: psycopg.Connection, spec: RollupSpec, day: date, recorded: ledger.LedgerEntry,
               fp: ledger.Fingerprint) -> None:
    """Raise _Refresh (after marking the day) when the raw rows changed since the aggregate was computed."""
    if recorded.fingerprint != fp:
        ledger.mark_day(conn, spec.raw_table, day)
        raise _Refresh(
            f"raw rows changed since {spec.aggregate_table} was computed ({recorded.raw_rows} then, "
            f"{fp.raw_rows} now, or an update); refresh requested"
        )


class _Late(Exception):
    """The day was pruned before: its raw rows are late arrivals, kept raw."""

    def __init__(self, rows: int) -> None:
        super().__init__(rows)
        self.rows = rows


class _Refresh(_Skip):
    """Skipped because the raw rows changed; committed with the invalidation mark."""


def _prune_raw_days(
    context: dg.AssetExecutionContext,
    conn: psycopg.Connection,
    spec: RollupSpec,
    cutoff_day: date,
    extra_params: dict[str, Any],
    batch: int,
) -> PruneReport:
    """Every day from the first partition to the cutoff that still holds raw rows (module docstring)."""
    report = PruneReport()
    next_day = sql.compose(sql.NEXT_RAW_DAY, spec.raw_table, spec.ts_column, spec.id_column, spec.ts_type,
                           held_rows.holdable(spec))
    start = date.fromisoformat(DAILY_PARTITIONS.get_first_partition_key())
    from_start, _ = spec.day_bounds(start)
    cutoff, _ = spec.day_bounds(cutoff_day)
    with conn.transaction():
        bound = spec.bind(conn)
        facts = block_pieces.block_facts(conn, psql.Identifier(spec.raw_table).as_string(conn))
        report.rows_before_start = int(conn.execute(
            sql.compose(sql.ROWS_BEFORE_START, spec.raw_table, spec.ts_column, spec.id_column),
            {"start": from_start},
        ).fetchone()[0])
    while True:
        with conn.transaction():
            day = conn.execute(next_day, {"from_start": from_start, "cutoff": cutoff}).fetchone()[0]
        if day is None:
            break
        day_start, day_end = spec.day_bounds(day)
        from_start = day_end
        params = {**extra_params, "day": day, "day_start": day_start, "day_end": day_end}
        refresh: _Refresh | None = None
        try:
            with write_transaction(conn, spec.lock_key, lock_timeout=True):
                try:
                    n, statements, kept = _prune_day(conn, spec, bound, day, params, batch, facts)
                except _Refresh as exc:  # commit the mark, delete nothing
                    refresh = exc
        except _Late as late:
            report.late_rows_kept[str(day)] = late.rows
            context.log.warning(f"{spec.raw_table} {day}: {late.rows} late row(s) for a pruned day, kept raw")
            continue
        except _Skip as why:
            report.skipped[str(day)] = str(why)
            context.log.warning(f"{spec.raw_table} {day}: kept, {why}")
            continue
        except (psycopg.errors.SerializationFailure, psycopg.errors.LockNotAvailable) as exc:
            report.skipped[str(day)] = f"changed or locked while pruning ({type(exc).__name__}); retried next run"
            context.log.warning(f"{spec.raw_table} {day}: kept, {report.skipped[str(day)]}")
            continue
        if refresh is not None:
            report.skipped[str(day)] = str(refresh)
            report.refresh_requested.append(str(day))
            context.log.warning(f"{spec.raw_table} {day}: kept, {refresh}")
            continue
        report.deleted += n
        report.days_pruned += 1
        if kept:
            report.null_key_rows_kept[str(day)] = kept
            context.log.warning(f"{spec.raw_table} {day}: {kept} row(s) with a NULL key column kept raw (in no "
                                "aggregate row)")
        report.statements += statements
        context.log.info(
            f"{spec.raw_table} {day}: deleted {n} row(s) in {statements} statement(s) (fingerprint equals the "
            f"ledger's); {report.deleted} so far"
        )
    return report


@dg.asset(
    key="retention_pruning",
    deps=[*ROLLUP_ASSETS, "system_health_config", *(spec.raw_spec for spec in ROLLUPS)],
    kinds={"postgres"},
    pool=ERP_DB_POOL,
    group_name=GROUP,
    retry_policy=RETRY_POLICY,
)
def retention_pruning(
    context: dg.AssetExecutionContext, config: RetentionConfig, erp_db: ErpDatabase
) -> dg.MaterializeResult:
    """Delete what the retention settings allow, never a raw row no aggregate provably holds."""
    with step_errors():
        return _prune(context, config, erp_db)


def _prune(context: dg.AssetExecutionContext, config: RetentionConfig, erp_db: ErpDatabase) -> dg.MaterializeResult:
    categories = category_params(config.event_categories)
    today = guard_today(config.today)
    batch = config.batch_size
    with erp_connection(erp_db, "retention", RETENTION_PRIVILEGES) as conn:
        # Every statement is planned for its own day's bounds: psycopg prepares a statement run 5 times, and
        # PostgreSQL may then plan it once for any bounds (a generic plan), which loses the parallel read of
        # a day (measured on the bench's data: 23 days of samples read in 1.0 s prepared, 0.75 s not).
        conn.prepare_threshold = None
        metrics_days, aggregate_days = _load_settings(conn, erp_db.db_schema, config)
        conn.rollback()
        ledger.ensure_own_schema(conn, erp_db.db_schema)
        aggregate_cutoff = today - timedelta(days=aggregate_days)
        sources = {"metricsRetentionDays": metrics_days,
                   "usage_event_retention_days": config.usage_event_retention_days}
        # each raw table's retention, where its rollup instance says it comes from (unset: kept)
        raw_days = {spec.raw_table: sources.get(spec.raw_retention or "") for spec in ROLLUPS}
        context.log.info(
            f"Retention: aggregates before {aggregate_cutoff} ({aggregate_days} days); raw: "
            + ", ".join(
                f"{table} before {today - timedelta(days=d)} ({d} days)" if d else f"{table} kept"
                for table, d in raw_days.items()
            )
        )
        reports: dict[str, PruneReport] = {}
        missing = {spec.aggregate_table: _missing_table(conn, spec) for spec in ROLLUPS}
        present = [spec for spec in ROLLUPS if missing[spec.aggregate_table] is None]
        for spec in ROLLUPS:
            days = raw_days.get(spec.raw_table)
            if spec not in present:
                context.log.warning(f"{missing[spec.aggregate_table]} does not exist: {spec.aggregate_table} is "
                                    "skipped.")
            if not days or spec not in present:
                reports[spec.raw_table] = PruneReport()
                continue
            reports[spec.raw_table] = _prune_raw_days(
                context, conn, spec, today - timedelta(days=days), {**categories, **spec.extra.get("params", {})},
                batch,
            )
        deleted = {table: r.deleted for table, r in reports.items()}
        deleted.update(_prune_aggregates(context, conn, aggregate_cutoff, present))

    n_skipped = sum(len(r.skipped) for r in reports.values())
    if n_skipped:
        context.log.warning(f"{n_skipped} raw day(s) kept: their aggregate does not provably hold them.")
    context.log.info(f"Retention done: deleted {deleted}.")
    return dg.MaterializeResult(
        metadata={
            **{f"deleted_{table}": dg.MetadataValue.int(int(v)) for table, v in deleted.items()},
            **{f"days_pruned_{table}": dg.MetadataValue.int(r.days_pruned) for table, r in reports.items()},
            "days_skipped": dg.MetadataValue.int(n_skipped),
            "skipped_days": dg.MetadataValue.json({t: r.skipped for t, r in reports.items()}),
            "refresh_requested": dg.MetadataValue.json({t: r.refresh_requested for t, r in reports.items()}),
            "late_rows_kept": dg.MetadataValue.json({t: r.late_rows_kept for t, r in reports.items()}),
            "null_key_rows_kept": dg.MetadataValue.json({t: r.null_key_rows_kept for t, r in reports.items()}),
            "delete_statements": dg.MetadataValue.int(sum(r.statements for r in reports.values())),
            "rows_before_start_date": dg.MetadataValue.json(
                {t: r.rows_before_start for t, r in reports.items()}
            ),
            "samples_cutoff_day": dg.MetadataValue.text(str(today - timedelta(days=metrics_days))),
            "aggregate_cutoff_day": dg.MetadataValue.text(str(aggregate_cutoff)),
            "metrics_retention_days": dg.MetadataValue.int(int(metrics_days)),
            "aggregate_retention_days": dg.MetadataValue.int(int(aggregate_days)),
        }
    )


def _lock(conn: psycopg.Connection, spec: RollupSpec) -> None:
    conn.execute(ADVISORY_XACT_LOCK, {"lock_key": spec.lock_key})


def _missing_table(conn: psycopg.Connection, spec: RollupSpec) -> str | None:
    """The table of a rollup that does not exist, if any: its raw table (a declared instance over a table
    this ERP lacks, e.g. one of a later migration) or its aggregate in our own schema (a declared rollup
    that has not run yet: it creates its table on its first run, which retention must not do). Such a
    rollup is left out of retention: nothing of it can be deleted."""
    tables = [psql.Identifier(spec.raw_table)]
    if spec.extra.get("aggregate_schema") == "own":
        tables.append(psql.Identifier(own_schema_name(), spec.aggregate_table))
    with conn.transaction():
        for table in tables:
            name = table.as_string(conn)
            if not conn.execute(TABLE_PRESENT, {"table": name}).fetchone()[0]:
                return name
    return None


TABLE_PRESENT = "SELECT to_regclass(%(table)s) IS NOT NULL"


def _prune_aggregates(
    context: dg.AssetExecutionContext, conn: psycopg.Connection, cutoff_day: date, specs: list[RollupSpec]
) -> dict[str, int]:
    """Whole aggregate days older than the cutoff, of every rollup, each day its own short transaction under
    the rollup's lock (the ledger entries of the days about to go first)."""
    deleted: dict[str, int] = {}
    for spec in specs:
        with conn.transaction():
            _lock(conn, spec)
            bound = spec.bind(conn)
            ledger.forget_ledger_before(conn, spec.aggregate_table, cutoff_day)
        oldest, delete_day = bound.aggregate_day_sql
        total = 0
        while True:
            with conn.transaction():
                _lock(conn, spec)
                day = conn.execute(oldest, {"cutoff_day": cutoff_day}).fetchone()[0]
                if day is None:
                    break
                n = conn.execute(delete_day, {"day": day}).rowcount
            total += n
            context.log.info(f"{spec.aggregate_table} {day}: deleted {n} aggregate row(s); {total} so far")
        deleted[spec.aggregate_table] = total
    return deleted
