"""A day the rollup verified is proved by retention from its fingerprint and the seal of the row it verified.

Why (issue 18, retention's total SQL <= 1.5x one plain DELETE): the independent recomputation now runs in
the metric rollup's own read of the day, and the ledger records the hash of the row it verified. Retention
then reads only the day's fingerprint; a day the rollup did not verify (a ledger written by an older
version, an app trigger rewriting the row) or whose row changed since is recomputed independently, as before.

Oracle for the generated test: the recomputation path itself (`_prove_day` with no recorded hash), run in
the same snapshot on the same rows: the shortcut must never prove a day the recomputation would not.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg import sql

from erp_pipelines import own_schema
from erp_pipelines.resources import ErpDatabase
from erp_pipelines.retention import block_pieces
from erp_pipelines.retention.assets import _prove_day, _Refresh, _Skip
from erp_pipelines.rollups import ledger
from erp_pipelines.rollups import sql as rollup_sql
from erp_pipelines.rollups.assets import system_metric_daily
from erp_pipelines.rollups.metric_daily import METRIC_DAILY, write_metric_day
from erp_pipelines_tests.support.erp_data import insert_samples, set_health_config
from erp_pipelines_tests.support.frozen_rollup_sql import FROZEN_METRIC_DAY_READ
from erp_pipelines_tests.support.generated import bounded
from erp_pipelines_tests.support.ledger import grant_own_schema, install_own_schema, pruned_days
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
RECOMPUTATION = "has_aggregate"  # METRIC_RECONCILE_FINAL's column: retention's recomputation ran


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
    row_hash = conn.execute(rollup_sql.METRIC_AGGREGATE_HASH, {"day_start": at(OLD)}).fetchone()[0]
    fingerprint = ledger.read_ledger(conn, "system_metric_daily", [OLD])[OLD].fingerprint
    assert recorded == ledger.verification_seal(fingerprint, row_hash)
    aggregate = metric_rows(conn)
    with statements_run() as seen:
        result = prune(resources, instance, batch_size=4)
    assert result.success
    assert retention_metadata(result)["skipped_days"]["system_metric_samples"] == {}
    assert pruned_days(conn, "system_metric_samples") == {OLD: 30}
    assert rows_on(conn, "system_metric_samples", "collected_at", OLD) == 0
    assert metric_rows(conn) == aggregate
    assert not [text for text in seen if RECOMPUTATION in text]
    assert [text for text in seen if text.lstrip().startswith("SELECT count(*) AS raw_rows")]  # the fingerprint


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


TAMPERING = {
    "nothing": None,
    "aggregate changed": 'UPDATE system_metric_daily SET "reqCount" = "reqCount" + 1',
    "aggregate rewritten equal": 'UPDATE system_metric_daily SET "reqCount" = "reqCount"',
    # NULL and 0 apart (found by review: the record hash hashes both a NULL and a float8 0.0 as 0)
    "rate set NULL": 'UPDATE system_metric_daily SET "avgErrorRatePct" = NULL',
    "rate set 0": 'UPDATE system_metric_daily SET "avgErrorRatePct" = 0',
    "latency set NULL": 'UPDATE system_metric_daily SET "avgLatencyMs" = NULL',
    "errors set 0": 'UPDATE system_metric_daily SET "errCount" = 0',
    "sample changed": 'UPDATE system_metric_samples SET "latencyMs" = coalesce("latencyMs", 0) + 1 '
                      "WHERE id = (SELECT min(id) FROM system_metric_samples)",
    "sample added": "INSERT INTO system_metric_samples (\"latencyMs\", \"errorRatePct\", \"reqCount\", "
                    "\"errCount\", collected_at) VALUES (1, 0, 1, 0, %(late)s)",
}
# what each tampering must lead to, whatever the rows (the others depend on them: either, as long as the
# shortcut and the recomputation agree)
EXPECTED = {"nothing": "proved", "aggregate rewritten equal": "proved", "aggregate changed": "skip",
            "sample changed": "refresh", "sample added": "refresh"}
rates = st.one_of(st.none(), st.floats(0, 100, allow_nan=False), st.sampled_from([math.nan, math.inf]))
samples = st.lists(
    st.tuples(st.one_of(st.none(), st.integers(0, 5000)), rates, st.one_of(st.none(), st.integers(0, 3)),
              st.one_of(st.none(), st.integers(0, 3)), st.integers(0, 5)),
    min_size=1, max_size=30,
)


def _verdict(conn: psycopg.Connection, params: dict, batch: int, entry: ledger.LedgerEntry) -> tuple:
    """What `_prove_day` decides, in a savepoint undone afterwards (it may mark the day)."""
    bound = METRIC_DAILY.bind(conn)
    try:
        with conn.transaction(force_rollback=True):
            proof = _prove_day(conn, METRIC_DAILY, bound, params["day"], params, entry, batch)
            return ("proved", proof.fingerprint, proof.kept)
    except _Refresh:
        return ("refresh",)
    except _Skip:
        return ("skip",)


def _verified_then(conn: psycopg.Connection, rows: list, batch: int, *changes: str) -> tuple[tuple, tuple]:
    """Roll the day up (verified) in one REPEATABLE READ transaction, make `changes`, then judge it both ways:
    (shortcut verdict, recomputation verdict). Everything is rolled back."""
    conn.execute("DELETE FROM system_metric_samples")
    conn.execute("DELETE FROM system_metric_daily")
    insert_samples(conn, rows)
    day_start, day_end = METRIC_DAILY.day_bounds(OLD)
    params = {"day": OLD, "day_start": day_start, "day_end": day_end, "now": day_end}
    with conn.transaction(force_rollback=True):
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        written = write_metric_day(conn, OLD, params, METRIC_DAILY.bind(conn))
        assert written.mismatch is None and written.aggregate_hash is not None
        for change in changes:
            conn.execute(change, {"late": at(OLD, 23)})
        shortcut = _verdict(conn, params, batch, ledger.LedgerEntry(written.fingerprint, written.aggregate_hash))
        recomputed = _verdict(conn, params, batch, ledger.LedgerEntry(written.fingerprint, None))
    return shortcut, recomputed


@given(rows=samples, batch=st.integers(1, 7), tampering=st.sampled_from(sorted(TAMPERING)))
@bounded(ci=40)
def test_the_shortcut_never_proves_a_day_the_recomputation_would_not(erp_tables, rows, batch, tampering):
    conn = erp_tables
    install_own_schema(conn)  # a refresh mark goes to our invalidation log
    change = TAMPERING[tampering]
    shortcut, recomputed = _verified_then(
        conn, [(lat, rate, req, err, at(OLD, 1 + moment, 7 * moment)) for lat, rate, req, err, moment in rows], batch,
        *([change] if change else []),
    )
    assert shortcut == recomputed
    if tampering in EXPECTED:
        assert shortcut[0] == EXPECTED[tampering]


def test_an_error_rate_of_zero_set_to_null_after_verification_is_not_proved(erp_tables):
    """Found by review: a day with requests and no errors has avgErrorRatePct 0.0; set to NULL, the row's
    record hash was unchanged (NULL and 0.0 both hash as 0), so the shortcut would have proved the day."""
    conn = erp_tables
    install_own_schema(conn)
    shortcut, recomputed = _verified_then(conn, [(100, 0.0, 5, 0, at(OLD, 3))], 10, TAMPERING["rate set NULL"])
    assert shortcut == recomputed == ("skip",)


def test_a_fingerprint_recorded_without_its_seal_does_not_prove_the_day(erp_tables):
    """Found by review: a writer that updates the ledger's fingerprint but not its seal (an older version's
    LEDGER_WRITE after a downgrade) while the row stays as verified (an app rule blocking the update) must not
    leave a verification for rows it never saw: the seal binds the row's hash to the fingerprint."""
    conn = erp_tables
    install_own_schema(conn)
    rows = [(100 + i, 0.5, i, 0, at(OLD, i)) for i in range(6)]
    day_start, day_end = METRIC_DAILY.day_bounds(OLD)
    params = {"day": OLD, "day_start": day_start, "day_end": day_end, "now": day_end}
    insert_samples(conn, rows)
    with conn.transaction(force_rollback=True):
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        bound = METRIC_DAILY.bind(conn)
        written = write_metric_day(conn, OLD, params, bound)
        insert_samples(conn, [(900, 0.5, 3, 1, at(OLD, 20))])  # not in the row
        now = ledger.fingerprint(conn, bound.fingerprint_sql, day_start, day_end)
        stale = ledger.LedgerEntry(now, written.aggregate_hash)
        assert _verdict(conn, params, 4, stale) == ("skip",)


def test_an_unverified_rewrite_clears_the_recorded_seal(erp_tables, resources, instance):
    """A verified day re-rolled while an app trigger changes what is written: the ledger's seal goes back to
    NULL with the new fingerprint (never a seal next to a fingerprint it was not made for)."""
    conn = erp_tables
    _arrange(conn, resources, instance)
    assert _recorded_hash(conn) is not None
    conn.execute(
        """
CREATE FUNCTION public.app_bumps_errors() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN NEW."errCount" := coalesce(NEW."errCount", 0) + 1; RETURN NEW; END $$;
CREATE TRIGGER app_bumps_errors BEFORE INSERT OR UPDATE ON system_metric_daily
    FOR EACH ROW EXECUTE FUNCTION public.app_bumps_errors();
"""
    )
    insert_samples(conn, [(999, 0.5, 4, 1, at(OLD, 22))])
    result = roll_up(resources, instance, OLD, assets=[system_metric_daily], raise_on_error=False)
    assert not check_results(result)[("system_metric_daily", "totals_match_samples")].passed
    assert _recorded_hash(conn) is None


def test_a_role_that_does_not_own_an_older_ledger_is_told_how_to_upgrade_it(erp_tables, erp_url, resources, instance):
    """Our schema as an older version left it, and a rollup role with the documented grants but not the
    tables' owner: the run stops before writing anything and names the one step to take."""
    conn = erp_tables
    _arrange(conn, resources, instance)
    own = sql.Identifier(own_schema.own_schema_name())
    conn.execute(sql.SQL("ALTER TABLE {}.rollup_ledger DROP COLUMN aggregate_hash").format(own))
    role, password = "erp_upg_" + uuid.uuid4().hex[:8], "Upg-pw-" + uuid.uuid4().hex[:8]
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
    try:
        db = conn.execute("SELECT current_database()").fetchone()[0]
        for grant in ("GRANT CONNECT ON DATABASE {db} TO {role}", "GRANT USAGE ON SCHEMA public TO {role}",
                      "GRANT SELECT ON system_metric_samples, system_health_config TO {role}",
                      "GRANT SELECT, INSERT, UPDATE, DELETE ON system_metric_daily TO {role}",
                      "GRANT USAGE ON SEQUENCE system_metric_daily_id_seq TO {role}"):
            conn.execute(sql.SQL(grant).format(db=sql.Identifier(db), role=sql.Identifier(role)))
        grant_own_schema(conn, role, upgrade=False)
        url = psycopg.conninfo.make_conninfo(erp_url, user=role, password=password)
        insert_samples(conn, [(999, 0.5, 4, 1, at(OLD, 22))])  # a run that went ahead would rewrite the row
        before = metric_rows(conn)
        result = roll_up({"erp_db": ErpDatabase(url=url)}, instance, OLD, assets=[system_metric_daily],
                         raise_on_error=False)
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure)
        text = failure.step_failure_data.user_failure_data.description
        assert "aggregate_hash" in text and "ALTER TABLE" in text and password not in text, text
        assert "owner: postgres" in text, text  # the role that created our tables here
        assert metric_rows(conn) == before
    finally:
        conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.mark.parametrize("rows_per_read", [1, 3, 100])
def test_the_fingerprint_in_time_slices_equals_the_days_fingerprint(erp_tables, rows_per_read):
    """The shortcut's fingerprint is summed over time slices sized from the ledger's count (block_pieces)."""
    conn = erp_tables
    insert_samples(conn, [(i, 0.1, i % 3, 0, at(OLD, 5)) for i in range(7)]
                   + [(i, None, None, None, at(OLD, i % 24, i)) for i in range(40)])
    day_start, day_end = METRIC_DAILY.day_bounds(OLD)
    with conn.transaction():
        bound = METRIC_DAILY.bind(conn)
        slices = block_pieces.time_slices(day_start, day_end, 47, rows_per_read)
        spans = block_pieces.read_spans(conn, bound.fingerprint_span_sql, slices)
        plain = block_pieces.read_spans(conn, bound.fingerprint_sql, slices)  # no span: no blocks, walked
        whole = ledger.fingerprint(conn, bound.fingerprint_sql, day_start, day_end)
    assert len(slices) == min(47 // rows_per_read + (47 % rows_per_read > 0), block_pieces.MAX_SLICES)
    assert block_pieces.fingerprint(spans) == block_pieces.fingerprint(plain) == whole and whole.raw_rows == 47
    assert all(s.first_block is None and s.last_block is None for s in plain)
    assert any(s.first_block is not None for s in spans)
    assert count(conn, "SELECT count(*) FROM system_metric_samples") == 47


signed_counts = st.one_of(st.none(), st.integers(-3, 3), st.sampled_from([0, 2**31 - 1]))
hostile_samples = st.lists(
    st.tuples(st.one_of(st.none(), st.integers(-5, 5000), st.just(2**31 - 1)), rates, signed_counts, signed_counts,
              st.integers(0, 5)),
    min_size=0, max_size=30,
)


@given(rows=hostile_samples)
@bounded(ci=40)
def test_the_grouped_read_gives_the_per_sample_reads_figures(erp_tables, rows):
    """The step's read groups the day by reqCount and takes the write's figures from the groups' sums; the
    read before it (FROZEN_METRIC_DAY_READ) summed them per sample. Same rows in, same figures and fingerprint
    out: NULL, zero, negative and largest reqCount/errCount, NULL and largest latencies, NaN and Infinity
    rates, days without requests or without latencies, and an empty day."""
    conn = erp_tables
    conn.execute("DELETE FROM system_metric_samples")
    insert_samples(conn, [(lat, rate, req, err, at(OLD, 1 + moment, 7 * moment)) for lat, rate, req, err, moment in rows])
    day_start, day_end = METRIC_DAILY.day_bounds(OLD)
    params = {"day": OLD, "day_start": day_start, "day_end": day_end}
    with conn.transaction(force_rollback=True):
        bound = METRIC_DAILY.bind(conn)
        grouped = conn.execute(bound.replace_day_sql, params).fetchone()
        expression = bound.fingerprint_sql.as_string(conn).split("sum(", 1)[1].rsplit("), 0)", 1)[0]
        per_sample = conn.execute(FROZEN_METRIC_DAY_READ.replace("{raw_row_hash}", expression), params).fetchone()
    assert tuple(grouped[:7]) == tuple(per_sample)
