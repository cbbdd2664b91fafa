"""The rollups' aggregate tables read back, and compared with the independent reference (support/reference.py)."""

from __future__ import annotations

from datetime import date, datetime

import psycopg

from erp_pipelines_tests.support.reference import metric_reference, usage_reference


def metric_rows(conn: psycopg.Connection) -> dict[date, tuple]:
    rows = conn.execute(
        'SELECT day, "avgLatencyMs", "avgErrorRatePct", "reqCount", "errCount" FROM system_metric_daily'
    ).fetchall()
    return {r[0].date() if isinstance(r[0], datetime) else r[0]: tuple(r[1:]) for r in rows}


def usage_rows(conn: psycopg.Connection) -> dict[tuple, tuple]:
    rows = conn.execute(
        "SELECT date, client_id, module_id, view_count, create_count, edit_count, delete_count, active_users "
        "FROM client_daily_usage"
    ).fetchall()
    return {tuple(r[:3]): tuple(r[3:]) for r in rows}


def aggregates(conn: psycopg.Connection) -> tuple[dict, dict]:
    return metric_rows(conn), usage_rows(conn)


def metrics_equal(actual: tuple, expected: tuple) -> bool:
    """(avgLatencyMs, avgErrorRatePct, reqCount, errCount): the rate compared to float precision."""
    (al, ar, areq, aerr), (el, er, ereq, eerr) = actual, expected
    rate_ok = (ar is None and er is None) or (ar is not None and er is not None and abs(ar - er) < 1e-9)
    return (al, areq, aerr) == (el, ereq, eerr) and rate_ok


def assert_equals_reference(
    conn: psycopg.Connection,
    samples: list[tuple],
    events: list[tuple],
    days: set[date] | None = None,
) -> None:
    """The aggregates of `days` (default: every day of the raw rows given) equal the reference over them."""
    want_m, want_u = metric_reference(samples), usage_reference(events)
    days = days if days is not None else {s[4].date() for s in samples} | {e[4].date() for e in events}
    got_m, got_u = aggregates(conn)
    for day in sorted(days):
        if day in want_m:
            assert day in got_m and metrics_equal(got_m[day], want_m[day]), (day, got_m.get(day), want_m[day])
        else:
            assert day not in got_m, day
        assert {k: v for k, v in got_u.items() if k[0] == day} == {
            k: v for k, v in want_u.items() if k[0] == day
        }, day
