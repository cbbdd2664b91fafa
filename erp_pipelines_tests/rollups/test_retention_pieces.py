"""Retention reads a day of samples in bounded pieces (issue 18: no statement over 100 ms, whatever the day's
size); the pieces must give exactly the verdict of the one-statement reading of the day.

Oracle: `METRIC_DAY_RECONCILE`, the whole day in one statement (the rollup's own `recompute_check`), run in
the same snapshot as the pieces. Inputs: generated days of samples in the shapes the ERP writes (NULL
counts and latencies, NaN and Infinity error rates, many samples on one timestamp, i.e. one transaction's
`now()`), cut with batch sizes from 1 up, so ties larger than a batch, pieces of one row and a day in one
piece all occur.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import psycopg
from hypothesis import given
from hypothesis import strategies as st

from erp_pipelines.retention.assets import _read_day, _segments
from erp_pipelines.rollups.assets import system_metric_daily
from erp_pipelines.rollups.metric_daily import METRIC_DAILY, write_metric_day
from erp_pipelines.rollups.registry import rollup_named
from erp_pipelines_tests.support.erp_data import insert_samples, set_health_config
from erp_pipelines_tests.support.generated import bounded
from erp_pipelines_tests.support.ledger import pruned_days
from erp_pipelines_tests.support.rollups import (
    ago,
    at,
    count,
    metric_rows,
    prune,
    retention_metadata,
    roll_up,
    rows_on,
)

OLD = ago(20)

rates = st.one_of(
    st.none(), st.floats(min_value=0, max_value=100, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
samples = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(0, 5000)),  # latencyMs
        rates,  # errorRatePct
        st.one_of(st.none(), st.integers(0, 3)),  # reqCount: few values, so groups span pieces
        st.one_of(st.none(), st.integers(0, 3)),  # errCount
        st.integers(0, 5),  # one of six moments of the day: ties larger than a batch are common
    ),
    min_size=1,
    max_size=40,
)


def _day_params() -> dict:
    day_start, day_end = METRIC_DAILY.day_bounds(OLD)
    return {"day": OLD, "day_start": day_start, "day_end": day_end, "now": day_end}


@given(rows=samples, batch=st.integers(1, 7))
@bounded(ci=30)
def test_the_pieces_give_the_one_statement_verdict(erp_tables, rows, batch):
    conn = erp_tables
    conn.execute("DELETE FROM system_metric_samples")
    conn.execute("DELETE FROM system_metric_daily")
    insert_samples(conn, [(lat, rate, req, err, at(OLD, 1 + moment, 7 * moment))
                          for lat, rate, req, err, moment in rows])
    params = _day_params()
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        bound = METRIC_DAILY.bind(conn)
        written = write_metric_day(conn, OLD, params, bound)
        segments = _segments(conn, METRIC_DAILY, params["day_start"], params["day_end"], batch)
        whole = METRIC_DAILY.read_reconciliation(conn, bound, params)
        pieces = _read_day(conn, METRIC_DAILY, bound, params, segments)
        sizes = [
            (s.tied, conn.execute("SELECT count(*) FROM system_metric_samples WHERE collected_at >= %s "
                                  "AND collected_at < %s", (s.from_ts, s.to_ts)).fetchone()[0])
            for s in segments
        ]
    assert pieces == whole
    assert whole.fingerprint == written.fingerprint and whole.mismatch is None
    # the pieces cover the day end to end, a plain piece holds at most a batch, a tie more than one
    assert segments[0].from_ts == params["day_start"] and segments[-1].to_ts == params["day_end"]
    assert all(a.to_ts == b.from_ts for a, b in pairwise(segments))
    assert sum(n for _, n in sizes) == len(rows)
    assert all(n > batch if tied else n <= batch for tied, n in sizes)


def test_a_day_with_ties_and_non_finite_rates_is_read_in_pieces_and_pruned(erp_tables, resources, instance):
    """9 samples on one timestamp (more than a batch of 2), NaN and Infinity rates, NULL counts: 9 pieces,
    more than READ_BATCHES, so the day is read in several statements."""
    conn = erp_tables
    set_health_config(conn, metrics_days=7, aggregate_days=365)
    moment = at(OLD, 12)
    insert_samples(conn, [(100 + i, [0.5, math.nan, math.inf, None][i % 4], None if i % 5 == 0 else i, i % 2,
                           moment if i < 9 else at(OLD, i % 24, i)) for i in range(25)])
    roll_up(resources, instance, OLD)
    aggregate = metric_rows(conn)
    result = prune(resources, instance, batch_size=2)
    assert result.success
    md = retention_metadata(result)
    assert md["skipped_days"]["system_metric_samples"] == {}
    assert pruned_days(conn, "system_metric_samples") == {OLD: 25}
    assert rows_on(conn, "system_metric_samples", "collected_at", OLD) == 0
    assert metric_rows(conn) == aggregate  # the aggregate holds them and is untouched
    # 16 other samples in pieces of 2 and the tie by TID in 5 statements (2, 2, 2, 2, 1)
    assert md["delete_statements"] == 8 + 5


def test_a_changed_sample_found_by_the_pieces_deletes_nothing(erp_tables, resources, instance):
    conn = erp_tables
    set_health_config(conn, metrics_days=7, aggregate_days=365)
    insert_samples(conn, [(100 + i, 0.5, i, 0, at(OLD, i % 24, i)) for i in range(20)])
    roll_up(resources, instance, OLD)
    # changed behind the capture triggers' back (as a restore or logical replication would)
    conn.execute("SET session_replication_role = replica")
    conn.execute('UPDATE system_metric_samples SET "latencyMs" = 1 WHERE id = (SELECT max(id) FROM '
                 "system_metric_samples)")
    conn.execute("SET session_replication_role = origin")
    result = prune(resources, instance, batch_size=3)
    assert result.success
    md = retention_metadata(result)
    assert str(OLD) in md["skipped_days"]["system_metric_samples"]
    assert md["refresh_requested"]["system_metric_samples"] == [str(OLD)]
    assert count(conn, "SELECT count(*) FROM system_metric_samples") == 20


def test_pieces_follow_a_day_that_ends_on_a_tie(erp_tables):
    """The last instant of the day holding more than a batch: the walk ends on the tie's piece."""
    conn = erp_tables
    last = at(OLD, 0) + timedelta(days=1) - timedelta(microseconds=1)
    insert_samples(conn, [(1, 0.0, 1, 0, last)] * 4)
    params = _day_params()
    with conn.transaction():
        segments = _segments(conn, METRIC_DAILY, params["day_start"], params["day_end"], 2)
    assert [s.tied for s in segments] == [False, True]
    assert segments[-1].to_ts == params["day_end"]


def test_pieces_of_a_timestamptz_day_are_walked_in_utc_across_the_autumn_clock_change(erp_tables):
    """Found by review: a timestamptz comes back in the session's TimeZone, where 02:00-03:00 happens twice
    on the night clocks go back; stepping past a tie in local wall-clock time went back an hour and the walk
    never ended. The walk now compares and steps in UTC."""
    conn = erp_tables
    conn.execute("ALTER TABLE rate_limit_violations ALTER COLUMN created_at TYPE timestamptz "
                 "USING created_at AT TIME ZONE 'UTC'")
    spec = dataclasses.replace(rollup_named("rate_limit_violations_daily"), ts_type="timestamptz")
    day = date(2026, 10, 25)  # Europe/Berlin: 03:00 CEST -> 02:00 CET at 01:00 UTC
    moments = ["00:30", "01:30", "01:30", "01:30", "01:45", "23:59"]  # 02:30 CEST, then 02:30 CET three times
    for moment in moments:
        conn.execute("INSERT INTO rate_limit_violations (ip_address, endpoint, limit_type, window_start, created_at) "
                     "VALUES ('10.0.0.1', '/x', 'ip', now(), %s::timestamptz)", (f"{day} {moment}:00+00",))
    conn.execute("SET TimeZone TO 'Europe/Berlin'")
    day_start, day_end = spec.day_bounds(day)
    found: list = []
    with conn.transaction():
        walker = threading.Thread(target=lambda: found.append(_segments(conn, spec, day_start, day_end, 2)),
                                  daemon=True)
        walker.start()
        walker.join(timeout=60)
        assert found, "the walk did not end"
    segments = found[0]
    assert segments[0].from_ts == day_start and segments[-1].to_ts == day_end
    assert all(a.to_ts == b.from_ts for a, b in pairwise(segments))
    tied = [s for s in segments if s.tied]
    assert [s.from_ts for s in tied] == [datetime(2026, 10, 25, 1, 30, tzinfo=UTC)]


def test_a_day_without_requests_gets_the_exact_mean_rate_however_the_read_is_parallelized(
    erp_tables, resources, instance
):
    """Found by review: once the metric read may run with parallel workers, a float `avg` adds the samples in
    an order that changes from run to run, so a re-run could rewrite the row of a day without requests. The
    fallback mean is summed as numeric: the stored rate is the exact mean of the finite rates (each rate as
    PostgreSQL converts a float8 to numeric: 15 significant digits), run after run."""
    conn = erp_tables
    db = conn.execute("SELECT current_database()").fetchone()[0]
    for setting in ("parallel_setup_cost = 0", "parallel_tuple_cost = 0", "min_parallel_index_scan_size = 0",
                    "min_parallel_table_scan_size = 0"):  # every read that can go parallel does
        conn.execute(psycopg.sql.SQL("ALTER DATABASE {} SET " + setting).format(psycopg.sql.Identifier(db)))
    rates = [((i * 7919) % 1000) / 7.0 for i in range(3000)]
    insert_samples(conn, [(10, rate, 0, 0, at(OLD, i % 24, i % 60)) for i, rate in enumerate(rates)]
                   + [(10, math.nan, None, None, at(OLD, 5))])
    exact = sum(Decimal(format(rate, ".15g")) for rate in rates) / len(rates)
    stored = []
    for _ in range(3):
        roll_up(resources, instance, OLD, assets=[system_metric_daily])
        stored.append(metric_rows(conn)[OLD])
    assert stored[0] == stored[1] == stored[2]
    assert stored[0][1] == float(exact)
