"""One read of the day: the rollup's write yields the ledger fingerprint, equal to the one retention takes,
and the aggregate read back passes both the read-back and the on-demand independent reconciliation."""

from __future__ import annotations

from erp_pipelines.partitions import day_bounds
from erp_pipelines.rollups import ledger
from erp_pipelines.rollups.metric_daily import METRIC_DAILY
from erp_pipelines.rollups.usage_daily import DEFAULT_EVENT_CATEGORIES, USAGE_DAILY, category_params
from erp_pipelines_tests.support.erp_data import add_clients, insert_events, insert_samples
from erp_pipelines_tests.support.ledger import ledger_rows
from erp_pipelines_tests.support.rollups import ago, at, check_results, roll_up

DAY = ago(3)


def _arrange(conn) -> None:
    first, second = add_clients(conn, 2)
    insert_samples(conn, [(100 + h, 0.5, 10 * h, h % 3, at(DAY, h)) for h in range(6)] + [(None, None, 0, None, at(DAY, 7))])
    insert_events(
        conn,
        [(first, 1 + h % 2, h % 3, ("View", "edit", "login")[h % 3], at(DAY, h)) for h in range(9)]
        + [(second, None, 1, "create", at(DAY, 10)), (second, 2, None, "DELETE", at(DAY, 11))],
    )


def test_the_ledger_holds_the_fingerprint_retention_computes_for_the_same_rows(erp_tables, resources, instance):
    conn = erp_tables
    _arrange(conn)
    roll_up(resources, instance, DAY)
    start, end = day_bounds(DAY)
    for spec in (METRIC_DAILY, USAGE_DAILY):
        with conn.transaction():
            fp = ledger.fingerprint(conn, spec.bind(conn).fingerprint_sql, start, end)
        assert ledger_rows(conn, spec.aggregate_table)[DAY] == (fp.raw_rows, fp.raw_hash)
        # retention's one read of the day (reconciliation + fingerprint) gives the same fingerprint, NULL-module
        # events and idle samples included
        params = {"day": DAY, "day_start": start, "day_end": end, **category_params(DEFAULT_EVENT_CATEGORIES)}
        with conn.transaction():
            *_, raw_rows, raw_hash = conn.execute(spec.bind(conn).reconcile_day_sql, params).fetchone()
        assert (raw_rows, raw_hash) == (fp.raw_rows, fp.raw_hash)


def test_a_day_rolled_up_with_the_independent_recomputation_passes_both_reconciliations(
    erp_tables, resources, instance
):
    conn = erp_tables
    _arrange(conn)
    result = roll_up(resources, instance, DAY, config={"recompute_check": True})
    checks = check_results(result)
    assert checks[("system_metric_daily", "totals_match_samples")].passed
    assert checks[("client_daily_usage", "counts_match_events")].passed
    # and a re-run without changes (the write rewrites nothing) reconciles the same way
    result = roll_up(resources, instance, DAY, config={"recompute_check": True})
    checks = check_results(result)
    assert checks[("system_metric_daily", "totals_match_samples")].passed
    assert checks[("client_daily_usage", "counts_match_events")].passed


def _metric_reading(conn, day):
    start, end = day_bounds(day)
    with conn.transaction():
        bound = METRIC_DAILY.bind(conn)
        return METRIC_DAILY.read_reconciliation(conn, bound, {"day": day, "day_start": start, "day_end": end})


def test_the_metric_reconciliation_grouped_by_requests_agrees_with_the_write_and_catches_a_changed_aggregate(
    erp_tables, resources, instance
):
    """METRIC_DAY_RECONCILE (samples grouped by their reqCount: requests as value x samples, the latency mean
    as group means times weight shares) agrees with the write on weights of every kind (NULL, 0, 1, large,
    repeated), and on a day without requests its fallback error rate (read only then) leaves NaN/Infinity out;
    an aggregate changed afterwards by one millisecond or one error is a mismatch."""
    conn = erp_tables
    quiet = ago(4)
    insert_samples(conn, [(100 + 37 * h, 0.25 * h, (None, 0, 1, 7, 1000, 7)[h % 6], h % 4, at(DAY, h)) for h in range(18)]
                   + [(None, 1.0, 500, 2, at(DAY, 20)), (900, float("nan"), 3, 1, at(DAY, 21))])
    insert_samples(conn, [(50, 1.5, 0, 0, at(quiet, 1)), (70, float("nan"), None, None, at(quiet, 2)),
                          (None, 2.5, 0, 0, at(quiet, 3)), (90, float("inf"), 0, 0, at(quiet, 4))])
    roll_up(resources, instance, DAY)
    roll_up(resources, instance, quiet)
    assert _metric_reading(conn, DAY).mismatch is None
    assert _metric_reading(conn, quiet).mismatch is None
    assert conn.execute('SELECT "avgErrorRatePct" FROM system_metric_daily WHERE day = %s', (at(quiet, 0),)).fetchone()[0] == 2.0
    conn.execute('UPDATE system_metric_daily SET "avgLatencyMs" = "avgLatencyMs" + 1 WHERE day = %s', (at(DAY, 0),))
    assert "independent recomputation" in _metric_reading(conn, DAY).mismatch
    conn.execute('UPDATE system_metric_daily SET "avgLatencyMs" = "avgLatencyMs" - 1, "errCount" = "errCount" + 1 '
                 "WHERE day = %s", (at(DAY, 0),))
    assert "independent recomputation" in _metric_reading(conn, DAY).mismatch
