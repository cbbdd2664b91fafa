"""A day the rollup verified is proved by retention from its fingerprint and the aggregate row's hash alone.

Why (issue 18, retention's total SQL <= 1.5x one plain DELETE): the independent recomputation now runs in
the metric rollup's own read of the day, and the ledger records the hash of the row it verified. Retention
then reads only the day's fingerprint; a day the rollup did not verify (a ledger written by an older
version, an app trigger rewriting the row) or whose row changed since is recomputed independently, as before.

Oracle for the generated test: the recomputation path itself (`_prove_day` with no recorded hash), run in
the same snapshot on the same rows: the shortcut must never prove a day the recomputation would not.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg import sql

from erp_pipelines import own_schema
from erp_pipelines.retention.assets import _prove_day, _read_fingerprint, _Refresh, _segments, _Skip
from erp_pipelines.rollups import ledger
from erp_pipelines.rollups import sql as rollup_sql
from erp_pipelines.rollups.assets import system_metric_daily
from erp_pipelines.rollups.metric_daily import METRIC_DAILY, write_metric_day
from erp_pipelines_tests.support.erp_data import insert_samples, set_health_config
from erp_pipelines_tests.support.generated import bounded
from erp_pipelines_tests.support.ledger import install_own_schema, pruned_days
from erp_pipelines_tests.support.rollups import (
    ago,
    at,
    check_results,
    count,
    metric_rows,
    prune,
    retention_metadata,
    roll_up,
    rows_on,
)

OLD = ago(20)
RECOMPUTATION = "AS latency_sum"  # in METRIC_DAY_PARTIALS and METRIC_DAY_RECONCILE, not in the fingerprint


@contextmanager
def statements_run() -> Iterator[list[str]]:
    """The text of every statement run through `Connection.execute` in this process (observed, not changed)."""
    seen: list[str] = []
    original = psycopg.Connection.execute

    def observed(self: psycopg.Connection, query: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(query if isinstance(query, str) else query.as_string(self))
        return original(self, query, *args, **kwargs)

    psycopg.Connection.execute = observed  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        psycopg.Connection.execute = original  # type: ignore[method-assign]


def _recorded_hash(conn: psycopg.Connection) -> Any:
    return conn.execute(
        sql.SQL("SELECT aggregate_hash FROM {}.rollup_ledger WHERE rollup = 'system_metric_daily' AND day = %s")
        .format(sql.Identifier(own_schema.own_schema_name())), (OLD,)
    ).fetchone()[0]


def _arrange(conn: psycopg.Connection, resources: dict, instance: Any, **roll_up_args: Any) -> Any:
    set_health_config(conn, metrics_days=7, aggregate_days=365)
    insert_samples(conn, [(100 + i, [0.5, math.nan, None][i % 3], None if i % 5 == 0 else i, i % 2,
                           at(OLD, i % 24, i)) for i in range(30)])
    return roll_up(resources, instance, OLD, assets=[system_metric_daily], **roll_up_args)


def test_a_verified_day_is_pruned_from_its_fingerprint_and_the_rows_hash_without_recomputing(
    erp_tables, resources, instance
):
    conn = erp_tables
    _arrange(conn, resources, instance)
    recorded = _recorded_hash(conn)
    assert recorded is not None
    assert recorded == conn.execute(rollup_sql.METRIC_AGGREGATE_HASH, {"day_start": at(OLD)}).fetchone()[0]
    aggregate = metric_rows(conn)
    with statements_run() as seen:
        result = prune(resources, instance, batch_size=4)
    assert result.success
    assert retention_metadata(result)["skipped_days"]["system_metric_samples"] == {}
    assert pruned_days(conn, "system_metric_samples") == {OLD: 30}
    assert rows_on(conn, "system_metric_samples", "collected_at", OLD) == 0
    assert metric_rows(conn) == aggregate
    assert not [text for text in seen if RECOMPUTATION in text]
    assert [text for text in seen if "AS raw_rows" in text]  # the fingerprint, in pieces


def test_an_aggregate_changed_after_it_was_verified_is_recomputed_and_kept(erp_tables, resources, instance):
    conn = erp_tables
    _arrange(conn, resources, instance)
    conn.execute('UPDATE system_metric_daily SET "errCount" = "errCount" + 1 WHERE day = %s', (at(OLD),))
    with statements_run() as seen:
        result = prune(resources, instance, batch_size=4)
    assert result.success
    skipped = retention_metadata(result)["skipped_days"]["system_metric_samples"]
    assert "independent recomputation" in skipped[str(OLD)]
    assert rows_on(conn, "system_metric_samples", "collected_at", OLD) == 30
    assert [text for text in seen if RECOMPUTATION in text]


def test_an_app_trigger_rewriting_the_aggregate_fails_the_step_and_nothing_is_recorded_as_verified(
    erp_tables, resources, instance
):
    """A hostile ERP: a trigger of its own adds an error to every row the rollup writes. The row read back
    differs from the figures, the blocking check fails, the ledger records no verified hash; with the trigger
    gone, retention recomputes the day, finds the same difference, and deletes nothing."""
    conn = erp_tables
    conn.execute(
        """
CREATE FUNCTION public.app_bumps_errors() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN NEW."errCount" := coalesce(NEW."errCount", 0) + 1; RETURN NEW; END $$;
CREATE TRIGGER app_bumps_errors BEFORE INSERT OR UPDATE ON system_metric_daily
    FOR EACH ROW EXECUTE FUNCTION public.app_bumps_errors();
"""
    )
    result = _arrange(conn, resources, instance, raise_on_error=False)
    assert not check_results(result)[("system_metric_daily", "totals_match_samples")].passed
    assert _recorded_hash(conn) is None
    conn.execute("DROP TRIGGER app_bumps_errors ON system_metric_daily")
    result = prune(resources, instance, batch_size=4)
    assert result.success
    assert str(OLD) in retention_metadata(result)["skipped_days"]["system_metric_samples"]
    assert rows_on(conn, "system_metric_samples", "collected_at", OLD) == 30


def test_a_ledger_from_before_verified_hashes_is_upgraded_and_its_days_are_recomputed(
    erp_tables, resources, instance
):
    """Our schema as an older version left it (no `aggregate_hash` column): the next run adds the column
    (NULL: not verified), keeps every fingerprint, and retention proves the day by recomputing it."""
    conn = erp_tables
    _arrange(conn, resources, instance)
    own = sql.Identifier(own_schema.own_schema_name())
    conn.execute(sql.SQL("ALTER TABLE {}.rollup_ledger DROP COLUMN aggregate_hash").format(own))
    with statements_run() as seen:
        result = prune(resources, instance, batch_size=4)
    assert result.success
    assert _recorded_hash(conn) is None
    assert pruned_days(conn, "system_metric_samples") == {OLD: 30}
    assert [text for text in seen if RECOMPUTATION in text]


TAMPERING = ("nothing", "aggregate changed", "aggregate rewritten equal", "sample changed", "sample added")
rates = st.one_of(st.none(), st.floats(0, 100, allow_nan=False), st.sampled_from([math.nan, math.inf]))
samples = st.lists(
    st.tuples(st.one_of(st.none(), st.integers(0, 5000)), rates, st.one_of(st.none(), st.integers(0, 3)),
              st.one_of(st.none(), st.integers(0, 3)), st.integers(0, 5)),
    min_size=1, max_size=30,
)


def _verdict(conn: psycopg.Connection, params: dict, segments: list, entry: ledger.LedgerEntry) -> tuple:
    """What `_prove_day` decides, in a savepoint undone afterwards (it may mark the day)."""
    bound = METRIC_DAILY.bind(conn)
    try:
        with conn.transaction(force_rollback=True):
            fp, kept = _prove_day(conn, METRIC_DAILY, bound, params["day"], params, segments, entry)
            return ("proved", fp, kept)
    except _Refresh:
        return ("refresh",)
    except _Skip:
        return ("skip",)


@given(rows=samples, batch=st.integers(1, 7), tampering=st.sampled_from(TAMPERING))
@bounded(ci=30)
def test_the_shortcut_never_proves_a_day_the_recomputation_would_not(erp_tables, rows, batch, tampering):
    conn = erp_tables
    install_own_schema(conn)  # a refresh mark goes to our invalidation log
    conn.execute("DELETE FROM system_metric_samples")
    conn.execute("DELETE FROM system_metric_daily")
    insert_samples(conn, [(lat, rate, req, err, at(OLD, 1 + moment, 7 * moment)) for lat, rate, req, err, moment in rows])
    day_start, day_end = METRIC_DAILY.day_bounds(OLD)
    params = {"day": OLD, "day_start": day_start, "day_end": day_end, "now": day_end}
    with conn.transaction(force_rollback=True):
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        written = write_metric_day(conn, OLD, params, METRIC_DAILY.bind(conn))
        assert written.mismatch is None and written.aggregate_hash is not None
        verified = ledger.LedgerEntry(written.fingerprint, written.aggregate_hash)
        if tampering == "aggregate changed":
            conn.execute('UPDATE system_metric_daily SET "reqCount" = "reqCount" + 1')
        elif tampering == "aggregate rewritten equal":
            conn.execute('UPDATE system_metric_daily SET "reqCount" = "reqCount"')
        elif tampering == "sample changed":
            conn.execute('UPDATE system_metric_samples SET "latencyMs" = coalesce("latencyMs", 0) + 1 '
                         "WHERE id = (SELECT min(id) FROM system_metric_samples)")
        elif tampering == "sample added":
            insert_samples(conn, [(1, 0.0, 1, 0, at(OLD, 23))])
        segments = _segments(conn, METRIC_DAILY, day_start, day_end, batch)
        shortcut = _verdict(conn, params, segments, verified)
        recomputed = _verdict(conn, params, segments, ledger.LedgerEntry(written.fingerprint, None))
    assert shortcut == recomputed
    expected = {"nothing": "proved", "aggregate rewritten equal": "proved", "aggregate changed": "skip",
                "sample changed": "refresh", "sample added": "refresh"}[tampering]
    assert shortcut[0] == expected


@pytest.mark.parametrize("batch", [1, 3, 100])
def test_the_fingerprint_in_pieces_equals_the_days_fingerprint(erp_tables, batch):
    """The shortcut's fingerprint is summed over statements of several pieces (FINGERPRINT_READ_BATCHES)."""
    conn = erp_tables
    insert_samples(conn, [(i, 0.1, i % 3, 0, at(OLD, 5)) for i in range(7)]
                   + [(i, None, None, None, at(OLD, i % 24, i)) for i in range(40)])
    day_start, day_end = METRIC_DAILY.day_bounds(OLD)
    with conn.transaction():
        bound = METRIC_DAILY.bind(conn)
        pieces = _read_fingerprint(conn, bound, _segments(conn, METRIC_DAILY, day_start, day_end, batch))
        whole = ledger.fingerprint(conn, bound.fingerprint_sql, day_start, day_end)
    assert pieces == whole and whole.raw_rows == 47
    assert count(conn, "SELECT count(*) FROM system_metric_samples") == 47
