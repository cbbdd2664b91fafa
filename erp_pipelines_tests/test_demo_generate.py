"""The demo generator fills the baseline tables with data that exercises the rollups' edge cases.

The pipelines' tests and benches rely on these shapes (NULL modules, unknown and mixed-case types,
midnight and late events, an incident day), so each one is checked here on a small, real data set.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import psycopg
import pytest

from erp_pipelines.demo.generate import (
    VIOLATIONS_PER_DAY,
    apply_baseline,
    demo_data_present,
    generate_demo_data,
    incident_day,
)
from erp_pipelines_tests.support.reference import KNOWN_EVENT_TYPES

END = date(2025, 11, 20)
DAYS = 3
EVENTS = 20_000


@pytest.fixture
def generated(conn: psycopg.Connection) -> tuple[psycopg.Connection, dict[str, int]]:
    apply_baseline(conn)
    assert not demo_data_present(conn)
    messages: list[str] = []
    counts = generate_demo_data(
        conn,
        days=DAYS,
        events=EVENTS,
        clients=10,
        modules=5,
        end_day=END,
        progress=messages.append,
        chunk_rows=8_000,
    )
    assert len([m for m in messages if m.startswith("events:")]) >= 3  # progress per chunk
    return conn, counts


def one(conn: psycopg.Connection, query: str, params: tuple = ()) -> object:
    return conn.execute(query, params).fetchone()[0]


def test_counts_and_guard(generated) -> None:
    conn, counts = generated
    assert counts == {
        "clients": 10,
        "modules": 5,
        "client_usage_events": EVENTS,
        "system_metric_samples": DAYS * 1440,
        "rate_limit_violations": DAYS * VIOLATIONS_PER_DAY,
    }
    assert one(conn, "SELECT count(DISTINCT (endpoint, limit_type)) FROM rate_limit_violations") == 15
    assert one(conn, "SELECT count(*) FROM client_usage_events") == EVENTS
    assert one(conn, "SELECT count(*) FROM system_metric_samples") == DAYS * 1440
    assert one(conn, "SELECT count(DISTINCT client_id) FROM client_usage_events") == 10
    assert one(conn, "SELECT count(DISTINCT module_id) FROM client_usage_events") == 5
    assert demo_data_present(conn)
    first = datetime(2025, 11, 18)
    assert one(conn, "SELECT min(occurred_at) >= %s FROM client_usage_events", (first,))
    assert one(conn, "SELECT max(occurred_at) < %s FROM client_usage_events", (first + timedelta(days=DAYS),))


def test_reuses_existing_clients_and_modules(generated) -> None:
    conn, _ = generated
    again = generate_demo_data(
        conn, days=1, events=100, clients=12, modules=5, end_day=END, progress=lambda _: None
    )
    assert again["clients"] == 2 and again["modules"] == 0
    assert one(conn, "SELECT count(*) FROM clients") == 12


def test_edge_cases_present(generated) -> None:
    conn, _ = generated
    null_modules = one(conn, "SELECT count(*) FROM client_usage_events WHERE module_id IS NULL")
    assert 0.01 * EVENTS < null_modules < 0.04 * EVENTS
    null_users = one(conn, "SELECT count(*) FROM client_usage_events WHERE user_id IS NULL")
    assert 0.05 * EVENTS < null_users < 0.15 * EVENTS
    known = sorted(KNOWN_EVENT_TYPES)
    unknown = one(
        conn, "SELECT count(*) FROM client_usage_events WHERE lower(event_type) <> ALL(%s)", (known,)
    )
    assert 0.003 * EVENTS < unknown < 0.03 * EVENTS
    assert one(conn, "SELECT count(*) FROM client_usage_events WHERE event_type = 'VIEW'") > 0
    assert one(conn, "SELECT count(*) FROM client_usage_events WHERE occurred_at::time = '00:00'") > 0
    # late rows: a row with a higher id than some row of a later day
    late = one(
        conn,
        """SELECT count(*) FROM (
               SELECT max(id) AS top, min(min(id)) OVER (ORDER BY occurred_at::date
                                                         ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS later
               FROM client_usage_events GROUP BY occurred_at::date) AS d
           WHERE top > later""",
    )
    assert late > 0
    top_share = one(
        conn,
        "SELECT max(n)::float / sum(n) FROM (SELECT count(*) AS n FROM client_usage_events GROUP BY client_id) t",
    )
    assert top_share > 0.2  # skewed: one big tenant (uniform would be 0.1)


def test_metrics_have_curve_and_incident(generated) -> None:
    conn, _ = generated
    bad = incident_day(END, DAYS)
    rows = conn.execute(
        """SELECT collected_at::date AS day,
                  sum("latencyMs"::float8 * "reqCount") / nullif(sum("reqCount") FILTER (WHERE "latencyMs" IS NOT NULL), 0),
                  100.0 * sum("errCount") / nullif(sum("reqCount"), 0)
           FROM system_metric_samples GROUP BY 1 ORDER BY 1"""
    ).fetchall()
    assert [r[0] for r in rows] == [END - timedelta(days=d) for d in (2, 1, 0)]
    for day, latency, error_pct in rows:
        if day == bad:
            assert latency > 1000 and error_pct > 5
        else:
            assert latency < 1000 and error_pct < 5
    assert one(conn, 'SELECT count(*) FROM system_metric_samples WHERE "reqCount" = 0') > 0
    assert one(conn, 'SELECT count(*) FROM system_metric_samples WHERE "latencyMs" IS NULL') > 0
    assert (
        one(
            conn,
            'SELECT count(*) FROM system_metric_samples WHERE "reqCount" = 0 AND "errorRatePct" IS NOT NULL',
        )
        == 0
    )
    busy, quiet = conn.execute(
        """SELECT avg("reqCount") FILTER (WHERE extract(hour FROM collected_at) BETWEEN 11 AND 15),
                  avg("reqCount") FILTER (WHERE extract(hour FROM collected_at) < 5)
           FROM system_metric_samples WHERE collected_at::date <> %s""",
        (bad,),
    ).fetchone()
    assert busy > 5 * quiet
