"""Deleting a proved day by ranges of heap blocks, with no walk of its timestamps first.

Why: on retention's verified path (the rollup's write verified the aggregate and the ledger holds its seal,
retention/assets.py `_prove_verified`) the proof needs only the day's fingerprint. Cutting the day into
pieces of `batch_size` rows by walking its timestamps (retention/sql.py BATCH_END) read the day's index once
more: 0.28 s of retention's 2.37 s of SQL at 166,667 samples a day (bench/results.md of 2026-12-05 04:34).
Here the fingerprint statements also probe where their first and last rows in time lie (two lookups in
the timestamp index), and the deletes go by ranges of the heap blocks between them (retention/sql.py
DELETE_BLOCKS):

- a piece is at most `batch // max tuples a heap page can hold` blocks (291 on 8 kB pages), so no DELETE
  removes more than `batch_size` rows, however the rows lie;
- each DELETE also has the slice's timestamp range and the holdable condition and runs in the day's
  snapshot, and the day's total must equal the fingerprint's count (retention/assets.py): which rows go
  never depends on where they lie, only how many statements it takes;
- rows stored outside the probed blocks (timestamps tied with the first or last row, commits out of
  order, free space reused after a VACUUM) are still there after the pieces: a slice whose pieces deleted
  fewer rows than it holds is then walked by timestamp (`short_slices`), which costs that slice's walk as
  before this module;
- the fingerprint is read in time slices sized from the ledger's row count: at most `rows_per_read` rows a
  slice when the day's rows are spread evenly over its hours. A day whose rows crowd into a few hours (a
  bulk import) reads more in one statement; a read takes no row lock.

A slice gets no block piece, and is walked and deleted by timestamp as before, when its rows are spread thin
over their blocks (fewer than MIN_ROWS_PER_BLOCK a block: e.g. rows updated long after, which PostgreSQL
moves to free space anywhere in the table), when its blocks are unknown, when `batch_size` is below one
page's worth of rows, or when the table cannot be deleted from by block ranges (`BlockFacts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import psycopg
from psycopg import sql as psql

from erp_pipelines.retention import sql
from erp_pipelines.rollups.ledger import Fingerprint

Slice = tuple[datetime, datetime]  # [from, to) of one time slice of a day

# Below this many of the slice's rows per block of its span, a block scan reads mostly other rows: walk.
MIN_ROWS_PER_BLOCK = 8
# At most this many time slices a day (one a minute); a day is cut evenly in time.
MAX_SLICES = 1440
TID_RANGE_SCAN_VERSION = 140000
# PostgreSQL's heap page header (24 bytes) and, per tuple, its aligned header (24) and line pointer (4):
# MaxHeapTuplesPerPage = (block_size - 24) // 28, 291 on 8 kB pages
PAGE_HEADER_BYTES = 24
MIN_TUPLE_BYTES = 28


@dataclass(frozen=True)
class BlockFacts:
    """Whether one raw table can be deleted from by block ranges (sql.BLOCK_FACTS, read once a run): the
    server has TID Range Scans (PostgreSQL 14+; before, a ctid range filters a scan of the whole table), and
    the table is a plain table without children (a ctid range would apply to every partition or child
    table, each with its own block numbers)."""

    tid_range_scan: bool
    plain_table: bool
    block_size: int

    @property
    def usable(self) -> bool:
        return self.tid_range_scan and self.plain_table

    @property
    def max_tuples_per_page(self) -> int:
        return (self.block_size - PAGE_HEADER_BYTES) // MIN_TUPLE_BYTES


def block_facts(conn: psycopg.Connection, raw_table: str) -> BlockFacts:
    version, block_size, plain = conn.execute(sql.BLOCK_FACTS, {"table": raw_table}).fetchone()
    return BlockFacts(int(version) >= TID_RANGE_SCAN_VERSION, bool(plain), int(block_size))


@dataclass(frozen=True)
class Span:
    """One time slice of a day as its fingerprint statement read it: its rows, their hash sum, and the heap
    blocks between its first and last row in time (None: no row, or not read)."""

    from_ts: datetime
    to_ts: datetime
    rows: int
    raw_hash: int
    first_block: int | None = None
    last_block: int | None = None

    @property
    def blocks(self) -> int:
        if self.first_block is None or self.last_block is None:
            return 0
        return self.last_block - self.first_block + 1


@dataclass(frozen=True)
class BlockPiece:
    """One DELETE: the rows of [from_ts, to_ts) in heap blocks [first_block, end_block)."""

    first_block: int
    end_block: int
    from_ts: datetime
    to_ts: datetime


def time_slices(day_start: datetime, day_end: datetime, expected_rows: int,
                rows_per_read: int) -> list[Slice]:
    """The day cut evenly in time into as many slices as `expected_rows` needs at `rows_per_read` a slice."""
    n = min(MAX_SLICES, max(1, -(-expected_rows // max(rows_per_read, 1))))
    step = (day_end - day_start) / n
    bounds = [day_start + step * i for i in range(n)] + [day_end]
    return list(zip(bounds, bounds[1:], strict=False))


def _block(tid: str | None) -> int | None:
    """The block number of a ctid's text form '(block,offset)'."""
    return None if tid is None else int(tid.strip("()").split(",")[0])


def read_spans(conn: psycopg.Connection, statement: psql.Composed, slices: list[Slice]) -> list[Span]:
    """Each slice's fingerprint, one statement a slice, and the blocks between its first and last row in time
    when the statement returns them (RollupSpec.fingerprint_sql(span=True); the plain fingerprint: none, so
    the slice is walked)."""
    spans = []
    for from_ts, to_ts in slices:
        rows, raw_hash, *tids = conn.execute(statement, {"day_start": from_ts, "day_end": to_ts}).fetchone()
        ends = [b for b in map(_block, tids) if b is not None]
        first, last = min(ends, default=None), max(ends, default=None)
        spans.append(Span(from_ts, to_ts, int(rows), int(raw_hash), first, last))
    return spans


def fingerprint(spans: list[Span]) -> Fingerprint:
    """The day's fingerprint from its slices (they cover the day without gap or overlap), summed exactly."""
    return Fingerprint(sum(s.rows for s in spans), Decimal(sum(s.raw_hash for s in spans)))


def plan(spans: list[Span], facts: BlockFacts, batch: int) -> tuple[BlockPiece, ...]:
    """Block pieces for the slices whose rows are dense in their blocks; a slice without a piece is walked by
    `short_slices` (module docstring). Pure: the plan is data, tested without a database."""
    per_piece = batch // facts.max_tuples_per_page
    pieces: list[BlockPiece] = []
    for span in spans:
        if (span.rows == 0 or not facts.usable or per_piece < 1 or span.first_block is None
                or span.rows < MIN_ROWS_PER_BLOCK * span.blocks):
            continue
        end = span.first_block + span.blocks
        pieces.extend(
            BlockPiece(first, min(first + per_piece, end), span.from_ts, span.to_ts)
            for first in range(span.first_block, end, per_piece)
        )
    return tuple(pieces)


def delete_pieces(conn: psycopg.Connection, statement: psql.Composed,
                  pieces: tuple[BlockPiece, ...]) -> dict[Slice, int]:
    """Run the plan's block pieces (sql.DELETE_BLOCKS, composed for the raw table); rows deleted per slice."""
    deleted: dict[Slice, int] = {}
    for piece in pieces:
        n = conn.execute(statement, {
            "from_tid": f"({piece.first_block},0)", "to_tid": f"({piece.end_block},0)",
            "from_ts": piece.from_ts, "to_ts": piece.to_ts,
        }).rowcount
        key = (piece.from_ts, piece.to_ts)
        deleted[key] = deleted.get(key, 0) + n
    return deleted


def short_slices(spans: list[Span], deleted: dict[Slice, int]) -> list[Slice]:
    """The slices whose pieces deleted fewer rows than they hold: those without a piece (`plan`), rows stored
    outside the probed blocks, or rows with a NULL key column (kept; the walk finds none of them)."""
    return [(s.from_ts, s.to_ts) for s in spans if s.rows and deleted.get((s.from_ts, s.to_ts), 0) < s.rows]
