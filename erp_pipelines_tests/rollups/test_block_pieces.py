"""Retention deletes a verified day by ranges of heap blocks (retention/block_pieces.py): never a row of
another day or with a NULL key, never more than `batch_size` rows in one statement, every row of the day.

Why: the walk of a day's timestamps that cut it into pieces (BATCH_END) was ~12 % of retention's SQL
(issue 18: retention <= 1.5x one plain DELETE). Block ranges depend on where PostgreSQL put the rows, which
our own fixtures (rows inserted in time order) barely vary, so the generated test lays rows of several days
out in random insert orders, moves rows between days with UPDATE (a new version lands wherever there is
room) and deletes some, then prunes. Oracle: a plain-Python record of which rows belong to which day, and
each DELETE's own row count.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from erp_pipelines.retention import block_pieces
from erp_pipelines.retention import sql as retention_sql
from erp_pipelines.rollups import held_rows
from erp_pipelines.rollups.registry import rollup_named
from erp_pipelines_tests.support.databases import new_database
from erp_pipelines_tests.support.erp_data import (
    create_erp_tables,
    insert_events,
    insert_samples,
    set_health_config,
)
from erp_pipelines_tests.support.generated import bounded
from erp_pipelines_tests.support.ledger import pruned_days
from erp_pipelines_tests.support.rollups import ago, at, prune, retention_metadata, roll_up, rows_on

OLD, OLDER, RECENT = ago(20), ago(21), ago(1)
FACTS = block_pieces.BlockFacts(tid_range_scan=True, plain_table=True, block_size=8192)
T0 = datetime(2026, 1, 1)


@contextmanager
def deletes_run() -> Iterator[list[tuple[str, int]]]:
    """(kind, rows) of every DELETE of raw samples run in this process: 'blocks', 'range' or 'tied'."""
    seen: list[tuple[str, int]] = []
    original = psycopg.Connection.execute

    def observed(self: psycopg.Connection, query: Any, *args: Any, **kwargs: Any) -> Any:
        cursor = original(self, query, *args, **kwargs)
        text = query if isinstance(query, str) else query.as_string(self)
        if text.lstrip().startswith('DELETE FROM "system_metric_samples"'):
            kind = "blocks" if "ctid >=" in text else "tied" if "ctid = ANY" in text else "range"
            seen.append((kind, cursor.rowcount))
        return cursor

    psycopg.Connection.execute = observed  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        psycopg.Connection.execute = original  # type: ignore[method-assign]


# -- the plan, as data ------------------------------------------------------------------------------------

spans = st.lists(
    st.tuples(st.integers(0, 5000), st.integers(0, 400), st.integers(0, 20_000)),  # first block, blocks-1, rows
    max_size=6,
)


@given(raw=spans, batch=st.integers(1, 40_000), tid=st.booleans(), plain=st.booleans(),
       block_size=st.sampled_from([8192, 16384, 32768]), known=st.booleans())
@bounded(ci=300)
def test_the_plan_covers_each_dense_span_in_pieces_of_at_most_a_batch(raw, batch, tid, plain, block_size, known):
    facts = block_pieces.BlockFacts(tid, plain, block_size)
    given_spans = [
        block_pieces.Span(T0 + timedelta(hours=i), T0 + timedelta(hours=i + 1), rows, 0,
                          first if rows and known else None, first + extra if rows and known else None)
        for i, (first, extra, rows) in enumerate(raw)
    ]
    pieces = block_pieces.plan(given_spans, facts, batch)
    for span in given_spans:
        mine = [p for p in pieces if p.from_ts == span.from_ts]
        if span.rows == 0:
            assert not mine
            continue
        per_piece = batch // facts.max_tuples_per_page
        dense = (tid and plain and known and per_piece >= 1
                 and span.rows >= block_pieces.MIN_ROWS_PER_BLOCK * span.blocks)
        assert bool(mine) == dense  # a slice without a piece is walked (short_slices)
        if dense:  # end to end, no gap, no overlap; the most rows a piece's blocks can hold is <= batch
            assert mine[0].first_block == span.first_block and mine[-1].end_block == span.last_block + 1
            assert all(a.end_block == b.first_block for a, b in zip(mine, mine[1:], strict=False))
            assert all(0 < p.end_block - p.first_block <= per_piece for p in mine)
            assert all((p.end_block - p.first_block) * facts.max_tuples_per_page <= batch for p in mine)


def test_the_most_tuples_a_page_holds_is_postgresqls_max_heap_tuples_per_page():
    assert FACTS.max_tuples_per_page == 291  # MaxHeapTuplesPerPage for 8 kB pages (htup_details.h)


@given(expected=st.integers(0, 10**7), per_read=st.integers(1, 10**6), tz=st.booleans())
@bounded(ci=200)
def test_time_slices_cut_the_day_end_to_end(expected, per_read, tz):
    from datetime import UTC

    start = T0.replace(tzinfo=UTC) if tz else T0
    end = start + timedelta(days=1)
    slices = block_pieces.time_slices(start, end, expected, per_read)
    assert slices[0][0] == start and slices[-1][1] == end
    assert all(a[1] == b[0] for a, b in zip(slices, slices[1:], strict=False))
    assert all(a < b for a, b in slices)
    assert len(slices) == min(block_pieces.MAX_SLICES, max(1, -(-expected // per_read)))


# -- on the database --------------------------------------------------------------------------------------

def _arrange(conn: psycopg.Connection, rows: list[tuple], resources: dict, instance: Any, *days) -> None:
    set_health_config(conn, metrics_days=7, aggregate_days=365)
    insert_samples(conn, rows)
    conn.execute("VACUUM ANALYZE system_metric_samples")
    roll_up(resources, instance, *days)


def _prune_old_day(conn: psycopg.Connection, rows: list[tuple], resources: dict, instance: Any, recent_rows: int,
                   **config: Any) -> list[tuple[str, int]]:
    """Roll up OLD and RECENT from `rows`, prune: OLD has no row left, RECENT all of its own; the DELETEs run."""
    _arrange(conn, rows, resources, instance, OLD, RECENT)
    with deletes_run() as deletes:
        result = prune(resources, instance, **config)
    assert result.success
    assert retention_metadata(result)["skipped_days"]["system_metric_samples"] == {}
    assert rows_on(conn, "system_metric_samples", "collected_at", OLD) == 0
    assert rows_on(conn, "system_metric_samples", "collected_at", RECENT) == recent_rows
    return deletes


def test_days_sharing_blocks_lose_only_the_pruned_days_rows(erp_tables, resources, instance):
    """Rows of an old day and a recent one inserted in turn, so every block holds both: the old day goes by
    block pieces of one block (batch_size 291), the recent day keeps every row."""
    conn = erp_tables
    rows = [(i, 0.5, i % 4, i % 2, at(OLD if i % 2 else RECENT) + timedelta(seconds=i)) for i in range(2000)]
    deletes = _prune_old_day(conn, rows, resources, instance, 1000, batch_size=291)
    assert pruned_days(conn, "system_metric_samples") == {OLD: 1000}
    assert {kind for kind, _ in deletes} == {"blocks"}
    assert sum(n for _, n in deletes) == 1000 and max(n for _, n in deletes) <= 291


def test_a_row_stored_after_other_days_rows_is_found_by_walking_its_slice(erp_tables, resources, instance):
    """A sample inserted after many of a later day, with a timestamp in the middle of the old day: it lies
    outside the blocks between the old day's first and last rows in time. The slice's pieces delete one
    row fewer than the slice holds, so the slice is walked, and nothing of the old day is left."""
    conn = erp_tables
    rows = ([(i, 0.5, 1, 0, at(OLD) + timedelta(seconds=100 * i)) for i in range(500)]
            + [(i, 0.5, 1, 0, at(RECENT, i % 24, i % 60)) for i in range(3000)]
            + [(7, 0.5, 1, 0, at(OLD, 12, 30))])
    assert _prune_old_day(conn, rows, resources, instance, 3000) == [("blocks", 500), ("range", 1)]


def test_rows_tied_with_the_first_and_last_are_all_deleted(erp_tables, resources, instance):
    """The probes pick one of the rows tied at the day's first and last timestamps (one transaction's
    `now()`), wherever it lies: the rows of the ties stored elsewhere are found by walking the slice."""
    conn = erp_tables
    first, last = at(OLD, 0, 1), at(OLD, 23, 59)
    rows = ([(i, 0.5, 1, 0, first) for i in range(300)] + [(i, 0.5, 1, 0, at(RECENT, 3)) for i in range(2000)]
            + [(i, 0.5, 1, 0, at(OLD, 1 + i % 20)) for i in range(300)] + [(i, 0.5, 1, 0, last) for i in range(300)]
            + [(i, 0.5, 1, 0, at(RECENT, 4)) for i in range(2000)] + [(i, 0.5, 1, 0, first) for i in range(50)])
    deletes = _prune_old_day(conn, rows, resources, instance, 4000, batch_size=291)
    assert sum(n for _, n in deletes) == 950 and max(n for _, n in deletes) <= 291


def test_rows_with_a_null_key_in_the_blocks_stay(erp_tables):
    """DELETE_BLOCKS keeps rows no aggregate row can hold (a NULL module_id of a usage event, held_rows.py),
    whichever blocks they share with the day's other rows."""
    conn = erp_tables
    spec = rollup_named("client_daily_usage")
    clients = [uuid.UUID(int=i + 1) for i in range(3)]  # the fixture's clients and modules 1-4
    insert_events(conn, [(clients[i % 3], None if i % 5 == 0 else 1 + i % 4, 1, "view", at(OLD, i % 24))
                         for i in range(200)])
    statement = retention_sql.compose(retention_sql.DELETE_BLOCKS, spec.raw_table, spec.ts_column, spec.id_column,
                                      holdable=held_rows.holdable(spec))
    day_start, day_end = spec.day_bounds(OLD)
    with conn.transaction():
        piece = block_pieces.BlockPiece(0, 1000, day_start, day_end)
        deleted = block_pieces.delete_pieces(conn, statement, (piece,))
    assert deleted == {(day_start, day_end): 160}
    assert conn.execute("SELECT count(*), count(module_id) FROM client_usage_events").fetchone() == (40, 0)


def test_a_day_spread_thin_over_the_table_is_walked(erp_tables, resources, instance):
    """One old sample in every hundred, in time order from the table's first block to its last: fewer than
    MIN_ROWS_PER_BLOCK of the day a block, so reading its blocks would read mostly other rows; the day is
    walked by timestamp as before."""
    conn = erp_tables
    rows = [(i, 0.5, 1, 0, at(OLD if i % 100 == 0 else RECENT) + timedelta(seconds=i)) for i in range(6000)]
    assert {kind for kind, _ in _prune_old_day(conn, rows, resources, instance, 5940)} == {"range"}


layouts = st.lists(
    st.tuples(st.sampled_from([OLD, OLDER, RECENT]), st.integers(0, 23), st.integers(0, 59)),
    min_size=1, max_size=600,
)
moves = st.lists(st.tuples(st.integers(0, 599), st.sampled_from([OLD, OLDER, RECENT]), st.booleans()), max_size=40)


@given(layout=layouts, changes=moves, batch=st.sampled_from([291, 400, 1000, 15000]))
@bounded(ci=8, nightly_examples=80)
def test_generated_layouts_lose_exactly_the_pruned_days_rows(erp_tables, resources, instance, layout, changes,
                                                            batch):
    conn = erp_tables
    _reset(conn)
    set_health_config(conn, metrics_days=7, aggregate_days=365)
    insert_samples(conn, [(i, 0.5, i % 3, i % 2, at(day, hour, minute)) for i, (day, hour, minute) in
                          enumerate(layout)])
    ids = [r[0] for r in conn.execute("SELECT id FROM system_metric_samples ORDER BY id").fetchall()]
    day_of = {row_id: day for row_id, (day, _, _) in zip(ids, layout, strict=True)}
    for index, day, delete in changes:  # an UPDATE puts a new version wherever there is room
        row_id = ids[index % len(ids)]
        if row_id not in day_of:
            continue
        if delete:
            conn.execute("DELETE FROM system_metric_samples WHERE id = %s", (row_id,))
            del day_of[row_id]
        else:
            conn.execute("UPDATE system_metric_samples SET collected_at = %s WHERE id = %s", (at(day, 6), row_id))
            day_of[row_id] = day
    roll_up(resources, instance, OLDER, OLD, RECENT)
    with deletes_run() as deletes:
        result = prune(resources, instance, batch_size=batch)
    assert result.success
    left = {r[0] for r in conn.execute("SELECT id FROM system_metric_samples").fetchall()}
    assert left == {row_id for row_id, day in day_of.items() if day == RECENT}
    assert all(n <= batch for _, n in deletes)
    assert sum(n for _, n in deletes) == sum(1 for day in day_of.values() if day != RECENT)


def _reset(conn: psycopg.Connection) -> None:
    """The ERP tables and our own schema's records as before the first example (examples share a database)."""
    conn.execute("TRUNCATE system_metric_samples, system_metric_daily")
    if conn.execute("SELECT to_regnamespace('erp_pipelines') IS NOT NULL").fetchone()[0]:
        conn.execute("TRUNCATE erp_pipelines.rollup_ledger, erp_pipelines.pruned_days, erp_pipelines.invalidations")


@pytest.mark.parametrize("server", ["pg_server", "pg15_server"])
def test_a_block_piece_is_a_tid_range_scan(request, server):
    """The DELETE reads only its blocks on both majors we test (PostgreSQL 14+ plans a TID Range Scan)."""
    url = new_database(request.getfixturevalue(server))
    with psycopg.connect(url) as conn:
        create_erp_tables(conn)
        # thirty days, the deleted slice one hour of one of them: the timestamp index could compete
        insert_samples(conn, [(i, 0.5, 1, 0, at(ago(d), i % 24, i % 60)) for d in range(30) for i in range(2000)])
        conn.execute("ANALYZE system_metric_samples")
        statement = retention_sql.compose(retention_sql.DELETE_BLOCKS, "system_metric_samples", "collected_at", "id")
        plan = "\n".join(r[0] for r in conn.execute(
            psycopg.sql.SQL("EXPLAIN ") + statement,
            {"from_tid": "(3,0)", "to_tid": "(5,0)", "from_ts": at(OLD, 5), "to_ts": at(OLD, 6)},
        ))
        facts = block_pieces.block_facts(conn, "system_metric_samples")
        conn.rollback()
    assert "Tid Range Scan" in plan, plan
    assert dataclasses.astuple(facts) == (True, True, 8192)


def test_a_partitioned_raw_table_is_walked(erp_tables):
    """A ctid range would apply to every partition, each with its own block numbers: not by blocks."""
    conn = erp_tables
    conn.execute("CREATE TABLE parted_samples (id int, collected_at timestamp) PARTITION BY RANGE (collected_at)")
    conn.execute("CREATE TABLE parent_samples (id int)")
    conn.execute("CREATE TABLE child_samples () INHERITS (parent_samples)")
    assert block_pieces.block_facts(conn, "parted_samples").usable is False
    assert block_pieces.block_facts(conn, "parent_samples").usable is False
    assert block_pieces.block_facts(conn, "child_samples").usable is True
    assert block_pieces.block_facts(conn, "system_metric_samples").usable is True
