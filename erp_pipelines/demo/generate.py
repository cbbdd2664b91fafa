"""Synthetic ERP usage and health data for demos, tests and benchmarks.

Every row is made inside PostgreSQL with `generate_series` and `random()` (seeded with `setseed`), so a
million events take seconds and no row ever travels through Python. Python only decides how many rows
each day gets (a handful of integers) and cuts the work into chunks, so long runs report progress.

The data is shaped to exercise the pipelines' edge cases on purpose:

- `client_usage_events`: skewed tenants (a few big clients), a daily traffic curve, mixed-case and
  unknown event types (~1%), ~2% NULL `module_id`, ~10% NULL `user_id`, some events exactly at midnight,
  and ~0.5% "late rows" (an earlier day's `occurred_at` inserted last, so with higher ids than later days).
- `system_metric_samples`: one sample a minute (or `samples` spread evenly) following the same curve,
  night minutes with no requests (`errorRatePct` NULL there), some NULL latencies, and one incident day
  whose request-weighted latency and error rate exceed the critical thresholds (1000 ms, 5%).

All of it runs in one transaction: a failed run leaves nothing behind. Whether to run at all (the tables
may already hold data) is the caller's decision, helped by `demo_data_present`.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

from erp_pipelines import settings
from erp_pipelines.resources import DEMO_MIGRATIONS_DIR, psycopg_conninfo

Progress = Callable[[str], None]

CHUNK_ROWS = 200_000
LATE_FRACTION = 0.005
INCIDENT_DAYS_BEFORE_END = 10
BASELINE_SQL = DEMO_MIGRATIONS_DIR / "20251201_0000_baseline_init" / "migration.sql"

# Known event types by rollup bucket, and a few the rollup must ignore. Upper/initcap variants are made
# in SQL so the rollup's case-insensitive matching is exercised.
VIEW_TYPES = ["view", "page_view", "read", "open"]
CREATE_TYPES = ["create", "insert", "add"]
EDIT_TYPES = ["edit", "update", "modify"]
DELETE_TYPES = ["delete", "remove"]
UNKNOWN_TYPES = ["export", "login", "logout", "download", "share"]

_INSERT_CLIENTS = """
INSERT INTO clients (id, name, slug, legal_name, client_type, settings, "subscriptionPlan", onboarding_status)
SELECT u.id,
       'Demo Client ' || upper(substr(u.id::text, 1, 8)),
       'demo-' || replace(u.id::text, '-', ''),
       'Demo Client ' || upper(substr(u.id::text, 1, 8)) || ' Ltd',
       'Company',
       jsonb_build_object('currency', (ARRAY['INR', 'USD', 'EUR'])[1 + floor(random() * 3)::int], 'demo', true),
       (ARRAY['free', 'pro', 'enterprise'])[1 + floor(random() * 3)::int],
       'completed'
FROM (SELECT md5(random()::text || ':' || (%(have)s + g)::text)::uuid AS id
      FROM generate_series(1, %(missing)s) AS g OFFSET 0) AS u
ON CONFLICT DO NOTHING
"""

# Client ids are random but reproducible for a seed; the existing count goes into the hash so a second
# call with the same seed makes new ids (ON CONFLICT is the last guard against a clash).
# module_name is unique: the suffix continues after the largest id, so names never collide with the
# ERP's own modules (or with an earlier demo run's).
_INSERT_MODULES = """
INSERT INTO modules (module_name, display_name, description, route, sort_order)
SELECT 'demo_module_' || (base.top + g),
       'Demo Module ' || (base.top + g),
       'Synthetic module for demo data',
       '/demo/' || (base.top + g),
       10 * (base.top + g)
FROM generate_series(1, %(missing)s) AS g
CROSS JOIN (SELECT coalesce(max(id), 0) AS top FROM modules) AS base
"""

# The first `n` clients/modules (oldest first) get indexes 0..n-1; index 0 is the biggest tenant.
_PICK_CLIENTS = """
CREATE TEMP TABLE _demo_clients ON COMMIT DROP AS
SELECT (row_number() OVER (ORDER BY "createdAt", id) - 1)::int AS idx, id
FROM clients ORDER BY "createdAt", id LIMIT %(n)s
"""
_PICK_MODULES = """
CREATE TEMP TABLE _demo_modules ON COMMIT DROP AS
SELECT (row_number() OVER (ORDER BY id) - 1)::int AS idx, id
FROM modules ORDER BY id LIMIT %(n)s
"""

# One chunk of events. `days`/`counts` say how many rows each day gets; rows are inserted sorted by time,
# so ids grow with occurred_at like in the live app (late rows are the deliberate exception).
# random()^3 for the client index gives a power-law-ish skew: client 0 gets roughly n^(-1/3) of the events.
_INSERT_EVENTS = """
INSERT INTO client_usage_events (client_id, module_id, user_id, event_type, meta, occurred_at)
SELECT c.id, m.id, r.user_id, r.event_type, r.meta, r.occurred_at
FROM (
    SELECT floor(%(n_clients)s * power(random(), 3))::int AS cidx,
           CASE WHEN random() < 0.02 THEN NULL
                ELSE floor(%(n_modules)s * power(random(), 1.5))::int END AS midx,
           CASE WHEN random() < 0.10 THEN NULL
                ELSE 1 + floor(power(random(), 2) * 200)::int END AS user_off,
           random() AS type_r, random() AS variant_r, random() AS case_r, random() AS time_r,
           (random() + random() + random() + random() - 2.0) AS bell,
           random() AS flat,
           CASE WHEN random() < 0.8 THEN jsonb_build_object(
                    'src', (ARRAY['web', 'mobile', 'api'])[1 + floor(random() * 3)::int],
                    'ms', floor(random() * 800)::int)
           END AS meta,
           d.day
    FROM unnest(%(days)s::date[], %(counts)s::int[]) AS d(day, n)
    CROSS JOIN LATERAL generate_series(1, d.n) AS g
    OFFSET 0
) AS s
CROSS JOIN LATERAL (
    SELECT
        CASE WHEN s.user_off IS NULL THEN NULL ELSE s.cidx * 200 + s.user_off END AS user_id,
        CASE WHEN s.case_r < 0.10 THEN upper(t.base)
             WHEN s.case_r < 0.15 THEN initcap(t.base)
             ELSE t.base END AS event_type,
        s.meta,
        s.day + make_interval(secs => CASE
            WHEN s.time_r < 0.002 THEN 0                                   -- exactly midnight
            WHEN s.time_r < 0.200 THEN least(s.flat * 86400, 86399.999)    -- any time of day
            ELSE greatest(0, least(86399.999, 46800 + s.bell * 16200))     -- bell around 13:00
        END) AS occurred_at
    FROM (SELECT CASE
        WHEN s.type_r < 0.55 THEN (%(view)s::text[])[1 + floor(s.variant_r * cardinality(%(view)s::text[]))::int]
        WHEN s.type_r < 0.70 THEN (%(create)s::text[])[1 + floor(s.variant_r * cardinality(%(create)s::text[]))::int]
        WHEN s.type_r < 0.90 THEN (%(edit)s::text[])[1 + floor(s.variant_r * cardinality(%(edit)s::text[]))::int]
        WHEN s.type_r < 0.99 THEN (%(delete)s::text[])[1 + floor(s.variant_r * cardinality(%(delete)s::text[]))::int]
        ELSE (%(unknown)s::text[])[1 + floor(s.variant_r * cardinality(%(unknown)s::text[]))::int]
    END AS base) AS t
) AS r
JOIN _demo_clients AS c ON c.idx = s.cidx
LEFT JOIN _demo_modules AS m ON m.idx = s.midx
ORDER BY r.occurred_at
"""

# Late rows: same shape, but an earlier day, inserted after everything else (so with the highest ids).
_INSERT_LATE_EVENTS = """
INSERT INTO client_usage_events (client_id, module_id, user_id, event_type, meta, occurred_at)
SELECT c.id, m.id,
       CASE WHEN random() < 0.10 THEN NULL ELSE c.idx * 200 + 1 + floor(random() * 200)::int END,
       (ARRAY['view', 'edit', 'create', 'delete', 'VIEW'])[1 + floor(random() * 5)::int],
       jsonb_build_object('late', true),
       %(first_day)s::date + make_interval(days => floor(random() * %(span_days)s)::int,
                                           secs => least(random() * 86400, 86399.999))
FROM (SELECT floor(%(n_clients)s * power(random(), 3))::int AS cidx,
             CASE WHEN random() < 0.02 THEN NULL ELSE floor(%(n_modules)s * random())::int END AS midx
      FROM generate_series(1, %(n)s) OFFSET 0) AS s
JOIN _demo_clients AS c ON c.idx = s.cidx
LEFT JOIN _demo_modules AS m ON m.idx = s.midx
"""

# Metric samples between two sample numbers. `traffic` is the daily curve (0.05 at night, 1.0 at 13:00);
# requests follow it with noise, minus a floor so quiet night minutes have none. The incident window
# (02:00-23:00 of one day) pushes latency to 1200-2700 ms and errors to 6-16% of requests. Normal errors
# average 0.6% of requests, below the seed's 1% warning, so only the incident day breaches a threshold.
_INSERT_SAMPLES = """
INSERT INTO system_metric_samples ("latencyMs", "errorRatePct", "reqCount", "errCount", collected_at)
SELECT lat, CASE WHEN req > 0 THEN 100.0 * err / req END, req, err, ts
FROM (
    SELECT ts, req, incident,
           CASE WHEN incident THEN least(req, ceil(req * (0.06 + 0.10 * random())))::int
                ELSE least(req, floor(req * 0.012 * random() + random()))::int END AS err,
           CASE WHEN random() < 0.02 THEN NULL
                WHEN incident THEN (1200 + random() * 1500)::int
                ELSE (80 + 250 * traffic + random() * 60)::int END AS lat
    FROM (
        SELECT ts, traffic,
               greatest(0, round(traffic * 200 * (0.7 + 0.6 * random()) - 10))::int AS req,
               (ts >= %(incident_from)s AND ts < %(incident_to)s) AS incident
        FROM (
            SELECT ts, 0.05 + 0.95 * exp(-power((extract(epoch FROM ts::time) / 3600.0 - 13) / 3.5, 2))
                       AS traffic
            FROM (SELECT %(start)s::timestamp + make_interval(secs => g * %(step)s) AS ts
                  FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g) AS t
        ) AS c
        OFFSET 0
    ) AS r
) AS x
"""


# Rate-limit violations for the third, declared-only rollup (erp_pipelines/defs/rollups/
# rate_limit_violations_daily): a few hundred a day, spread over the day, on a handful of endpoints and limit
# types from ~2,000 addresses (so distinct IPs per group stay well below its violations).
VIOLATIONS_PER_DAY = 200
_INSERT_VIOLATIONS = """
INSERT INTO rate_limit_violations (ip_address, endpoint, limit_type, request_count, window_start, created_at)
SELECT '10.0.' || (random() * 7)::int || '.' || (random() * 250)::int,
       (ARRAY['/api/auth/login', '/api/orders', '/api/reports/export', '/api/search', '/api/clients'])
           [1 + floor(random() * 5)::int],
       (ARRAY['ip', 'user', 'endpoint'])[1 + floor(random() * 3)::int],
       1 + floor(random() * 60)::int,
       ts - interval '1 minute', ts
FROM (SELECT %(start)s::timestamp + make_interval(secs => random() * %(span)s) AS ts
      FROM generate_series(1, %(n)s::bigint)) AS t
"""


def default_end_day() -> date:
    """Yesterday in UTC: the last full day, the one the daily schedules roll up first."""
    return datetime.now(UTC).date() - timedelta(days=1)


def incident_day(end_day: date, days: int) -> date:
    """The day whose metrics cross the critical thresholds: 10 days before the end, or mid-range if shorter."""
    back = INCIDENT_DAYS_BEFORE_END if days > INCIDENT_DAYS_BEFORE_END else days // 2
    return end_day - timedelta(days=back)


def _table_exists(conn: psycopg.Connection, table: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]


def demo_data_present(conn: psycopg.Connection) -> bool:
    """True if usage events or metric samples already exist, so callers do not generate twice."""
    for table in ("client_usage_events", "system_metric_samples"):
        if not _table_exists(conn, table):
            continue
        query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table))
        if conn.execute(query).fetchone()[0]:
            return True
    return False


def apply_baseline(conn: psycopg.Connection) -> None:
    """Run the demo baseline migration (all 47 tables) on an empty database, for benches and the CLI."""
    with conn.transaction():
        conn.execute(BASELINE_SQL.read_text(encoding="utf-8"))  # a file we ship, no parameters


def _day_counts(first: date, days: int, total: int) -> list[tuple[date, int]]:
    """Split `total` events over the days: weekends get 40%, the rest weekday traffic, counts sum exactly."""
    weights = [0.4 if (first + timedelta(d)).weekday() >= 5 else 1.0 for d in range(days)]
    scale = total / sum(weights)
    counts = [int(w * scale) for w in weights]
    for i in range(total - sum(counts)):
        counts[i % days] += 1
    return [(first + timedelta(d), n) for d, n in enumerate(counts)]


def _chunks(day_counts: list[tuple[date, int]], size: int) -> list[list[tuple[date, int]]]:
    """Cut (day, n) pieces into chunks of at most `size` rows, in day order; big days span chunks."""
    chunks: list[list[tuple[date, int]]] = []
    current: list[tuple[date, int]] = []
    room = size
    for day, n in day_counts:
        while n > 0:
            take = min(n, room)
            current.append((day, take))
            n -= take
            room -= take
            if room == 0:
                chunks.append(current)
                current, room = [], size
    if current:
        chunks.append(current)
    return chunks


def _seed_value(seed: int) -> float:
    """setseed() wants a float in [-1, 1]; derive it from the int seed reproducibly."""
    return random.Random(seed).uniform(-1.0, 1.0)


def generate_demo_data(
    conn: psycopg.Connection,
    *,
    days: int = 30,
    events: int = 1_000_000,
    clients: int = 300,
    modules: int = 40,
    end_day: date | None = None,
    seed: int = 42,
    samples: int | None = None,
    progress: Progress = print,
    chunk_rows: int = CHUNK_ROWS,
) -> dict[str, int]:
    """Fill clients, modules, usage events and metric samples in one transaction; return rows inserted.

    `samples` defaults to one a minute over the `days`; benches pass a larger number to reach a table size
    (they are then spaced evenly, several a minute). Existing clients/modules are reused; only the missing
    ones are inserted. Counts returned are the rows this call inserted per table. On a connection with a
    transaction already open this is a savepoint inside it, and the caller commits.
    """
    if days < 1 or events < 0 or clients < 1 or modules < 1:
        raise ValueError("days, clients and modules must be >= 1 and events >= 0")
    end_day = end_day or default_end_day()
    first_day = end_day - timedelta(days=days - 1)
    start = datetime.combine(first_day, datetime.min.time())
    span_seconds = days * 86400
    n_samples = samples if samples is not None else days * 1440
    step = span_seconds / n_samples if n_samples else 60.0
    incident = datetime.combine(incident_day(end_day, days), datetime.min.time())
    counts: dict[str, int] = {}
    t0 = time.perf_counter()

    with conn.transaction():
        conn.execute("SELECT setseed(%s)", (_seed_value(seed),))

        have = conn.execute("SELECT count(*) FROM clients").fetchone()[0]
        missing = max(0, clients - have)
        counts["clients"] = (
            conn.execute(_INSERT_CLIENTS, {"missing": missing, "have": have}).rowcount if missing else 0
        )
        have = conn.execute("SELECT count(*) FROM modules").fetchone()[0]
        missing = max(0, modules - have)
        counts["modules"] = conn.execute(_INSERT_MODULES, {"missing": missing}).rowcount if missing else 0
        # ON COMMIT DROP does not fire at a savepoint: a second call in the caller's open transaction
        # would find them still there.
        conn.execute("DROP TABLE IF EXISTS _demo_clients, _demo_modules")
        conn.execute(_PICK_CLIENTS, {"n": clients})
        conn.execute(_PICK_MODULES, {"n": modules})
        conn.execute("ANALYZE _demo_clients")
        conn.execute("ANALYZE _demo_modules")
        progress(f"clients: {counts['clients']} new, modules: {counts['modules']} new")

        n_late = int(events * LATE_FRACTION) if days > 1 else 0
        type_params = {
            "view": VIEW_TYPES,
            "create": CREATE_TYPES,
            "edit": EDIT_TYPES,
            "delete": DELETE_TYPES,
            "unknown": UNKNOWN_TYPES,
            "n_clients": clients,
            "n_modules": modules,
        }
        inserted = 0
        for chunk in _chunks(_day_counts(first_day, days, events - n_late), chunk_rows):
            params = dict(type_params, days=[d for d, _ in chunk], counts=[n for _, n in chunk])
            inserted += conn.execute(_INSERT_EVENTS, params).rowcount
            progress(
                f"events: {inserted:,}/{events:,} (through {chunk[-1][0]}, {time.perf_counter() - t0:.1f}s)"
            )
        if n_late:
            inserted += conn.execute(
                _INSERT_LATE_EVENTS,
                {
                    "n": n_late,
                    "first_day": first_day,
                    "span_days": days - 1,  # never the last day: late rows belong to an earlier one
                    "n_clients": clients,
                    "n_modules": modules,
                },
            ).rowcount
            progress(f"events: {inserted:,}/{events:,} (incl. {n_late:,} late rows)")
        counts["client_usage_events"] = inserted

        done = 0
        for lo in range(0, n_samples, chunk_rows):
            hi = min(n_samples, lo + chunk_rows) - 1
            done += conn.execute(
                _INSERT_SAMPLES,
                {
                    "start": start,
                    "step": step,
                    "lo": lo,
                    "hi": hi,
                    "incident_from": incident + timedelta(hours=2),
                    "incident_to": incident + timedelta(hours=23),
                },
            ).rowcount
            progress(f"metric samples: {done:,}/{n_samples:,} ({time.perf_counter() - t0:.1f}s)")
        counts["system_metric_samples"] = done
        if _table_exists(conn, "rate_limit_violations"):
            counts["rate_limit_violations"] = generate_rate_limit_violations(conn, first_day, days)
    progress(f"demo data done in {time.perf_counter() - t0:.1f}s: {counts}")
    return counts


def generate_rate_limit_violations(conn: psycopg.Connection, first_day: date, days: int) -> int:
    """VIOLATIONS_PER_DAY rows a day over [first_day, first_day + days); returns the rows inserted. Called by
    `generate_demo_data` when the table exists, and by `make run` after the schema sync created it (the
    seed's drifted state lacks it)."""
    start = datetime.combine(first_day, datetime.min.time())
    return conn.execute(
        _INSERT_VIOLATIONS, {"start": start, "span": days * 86400 - 1, "n": days * VIOLATIONS_PER_DAY}
    ).rowcount


def main(argv: list[str] | None = None) -> int:
    """CLI: fill ERP_DATABASE_URL (or the embedded server's `erp` database) with demo data once."""
    p = argparse.ArgumentParser(
        prog="python -m erp_pipelines.demo.generate", description=__doc__.split("\n")[0]
    )
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--clients", type=int, default=300)
    p.add_argument("--modules", type=int, default=40)
    p.add_argument("--samples", type=int, default=None, help="metric samples (default: one a minute)")
    p.add_argument(
        "--end-day",
        type=date.fromisoformat,
        default=None,
        help="last day, YYYY-MM-DD (default: yesterday UTC)",
    )
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--force", action="store_true", help="generate even if demo data is already present")
    p.add_argument(
        "--apply-baseline", action="store_true", help="create the baseline tables first if they are missing"
    )
    args = p.parse_args(argv)

    url = settings.erp_database_url()
    if not url:
        from erp_pipelines.embedded import start

        _, urls = start()
        url = urls.erp
    with psycopg.connect(psycopg_conninfo(url), application_name="erp-pipelines:demo-generate") as conn:
        if not _table_exists(conn, "client_usage_events"):
            if not args.apply_baseline:
                print(
                    "client_usage_events does not exist: sync the schema first, or pass --apply-baseline "
                    "on an empty database.",
                    file=sys.stderr,
                )
                return 2
            apply_baseline(conn)
        if demo_data_present(conn) and not args.force:
            print("Demo data already present (events or metric samples exist); use --force to add more.")
            return 0
        generate_demo_data(
            conn,
            days=args.days,
            events=args.events,
            clients=args.clients,
            modules=args.modules,
            samples=args.samples,
            end_day=args.end_day,
            seed=args.seed,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
