"""The rollups against their floors: per size (one day, 30 days) and, at the largest size, plans and backfill.

Why: the goals of the rollups are ratios to the cheapest statements that touch the same rows, timed
seconds before on the same server; this module holds those floors, the timings and their rows.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, timedelta
from typing import Any

import psycopg
from psycopg import sql

from bench.asset_calls import bound_statement, day_params, invoke_asset, statement_alone
from bench.common import DAYS, Bench, Measurement, Row, Timing, measure, paired, ratio_row
from bench.data import prepare_database
from erp_pipelines.partitions import day_bounds
from erp_pipelines.rollups import sql as rollup_sql

# Rounds of each whole step timed alternately with its floor: at ~1 s a step, 9 rounds cost ~12 s and keep
# one slow round (this machine is shared) from moving the median.
WHOLE_STEP_ROUNDS = 9

# Floors: the cheapest statements that touch the same rows (and, for the scan, the same columns) as the
# rollups. The scan reads client_id, module_id, user_id and event_type from the heap, so it cannot be an
# index-only scan; it does no grouping, which is what the rollup adds on top.
EVENTS_COUNT_DAY = """
SELECT count(*) FROM client_usage_events WHERE occurred_at >= %(day_start)s AND occurred_at < %(day_end)s
"""
EVENTS_SCAN_DAY = """
SELECT count(client_id), count(module_id), count(user_id), sum(hashtext(event_type))
FROM client_usage_events WHERE occurred_at >= %(day_start)s AND occurred_at < %(day_end)s
"""
SAMPLES_COUNT_RANGE = """
SELECT count(*) FROM system_metric_samples WHERE collected_at >= %(day_start)s AND collected_at < %(day_end)s
"""
WARM_EVENTS = "SELECT count(*), sum(hashtext(event_type)) FROM client_usage_events"
WARM_SAMPLES = 'SELECT count(*), sum("reqCount") FROM system_metric_samples'


def serial_scan_day(conn: psycopg.Connection, params: dict[str, Any]) -> None:
    """The serial-scan floor: EVENTS_SCAN_DAY without parallel workers, as the rollup's data-modifying
    statement never gets them."""
    with conn.transaction():
        conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        conn.execute(EVENTS_SCAN_DAY, params).fetchone()


def explain_plans(url: str, day: date) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the measured day's statements, rolled back: why a ratio is what it is."""
    p = day_params(day)
    statements = {
        "EVENTS_SCAN_DAY (floor)": EVENTS_SCAN_DAY,
        "USAGE_DAY_STATS": rollup_sql.USAGE_DAY_STATS,
        "USAGE_DAY_REPLACE": bound_statement(url, rollup_sql.USAGE_DAY_REPLACE),
        "USAGE_DAY_MISMATCHES": bound_statement(url, rollup_sql.USAGE_DAY_MISMATCHES),
        "SAMPLES_COUNT_RANGE (floor)": SAMPLES_COUNT_RANGE,
        "METRIC_DAY_READ": bound_statement(url, rollup_sql.METRIC_DAY_READ),
    }
    plans: dict[str, str] = {}
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM client_daily_usage WHERE date = %s", (day,))
        conn.execute("DELETE FROM system_metric_daily WHERE day = %s", (p["day_start"],))
        for name, text in statements.items():
            query = sql.SQL("EXPLAIN (ANALYZE, BUFFERS) ") + sql.SQL(text)
            plans[name] = "\n".join(row[0] for row in conn.execute(query, p))
        conn.rollback()
    return plans


def per_size(bench: Bench, events: int, samples: int) -> dict[str, Any]:
    bench.progress(f"size {events:,} events / {samples:,} samples")
    load = prepare_database(bench.url, events, samples, bench.end_day, bench.progress)
    p = day_params(bench.day)
    first_start, _ = day_bounds(bench.first_day)
    _, last_end = day_bounds(bench.end_day)
    window = {"day_start": first_start, "day_end": last_end}
    t: dict[str, Timing] = {}
    usage_replace = bound_statement(bench.url, rollup_sql.USAGE_DAY_REPLACE)
    metric_upsert = bound_statement(bench.url, rollup_sql.METRIC_DAY_READ)
    with psycopg.connect(bench.url, autocommit=True) as conn:
        conn.execute(WARM_EVENTS).fetchone()
        conn.execute(WARM_SAMPLES).fetchone()
        day_events = conn.execute(EVENTS_COUNT_DAY, p).fetchone()[0]
        day_samples = conn.execute(SAMPLES_COUNT_RANGE, p).fetchone()[0]

        def clear_usage_day() -> None:
            conn.execute("DELETE FROM client_daily_usage WHERE date = %s", (bench.day,))

        def clear_metric_day() -> None:
            conn.execute("DELETE FROM system_metric_daily WHERE day = %s", (p["day_start"],))

        t["events_count_day"] = measure(lambda: conn.execute(EVENTS_COUNT_DAY, p).fetchone())
        t["events_scan_day"] = measure(lambda: conn.execute(EVENTS_SCAN_DAY, p).fetchone())

        def serial_scan() -> None:
            serial_scan_day(conn, p)

        t["events_scan_day_serial"] = measure(serial_scan)
        t["usage_replace_day"] = measure(
            lambda: statement_alone(conn, usage_replace, p), reset=clear_usage_day
        )
        # the whole steps, each alternating with its floor (bench.common.paired): their targets' ratios
        t["events_scan_day_serial_paired"], t["usage_day"] = paired(
            serial_scan,
            lambda: invoke_asset("client_daily_usage", bench.url, bench.day, bench.day),
            reset=clear_usage_day,
            rounds=WHOLE_STEP_ROUNDS,
        )
        t["samples_count_day"] = measure(lambda: conn.execute(SAMPLES_COUNT_RANGE, p).fetchone())
        t["metric_upsert_day"] = measure(
            lambda: statement_alone(conn, metric_upsert, p), reset=clear_metric_day
        )
        t["samples_count_day_paired"], t["metric_day"] = paired(
            lambda: conn.execute(SAMPLES_COUNT_RANGE, p).fetchone(),
            lambda: invoke_asset("system_metric_daily", bench.url, bench.day, bench.day),
            reset=clear_metric_day,
            rounds=WHOLE_STEP_ROUNDS,
        )
        t["samples_count_30d"] = measure(lambda: conn.execute(SAMPLES_COUNT_RANGE, window).fetchone())
        t["metric_30d"] = measure(
            lambda: invoke_asset("system_metric_daily", bench.url, bench.first_day, bench.end_day),
            reset=lambda: conn.execute("TRUNCATE system_metric_daily"),
        )
    for name, timing in t.items():
        bench.progress(f"  {name}: {timing.median * 1000:.1f} ms")
    return {
        "events": events,
        "samples": samples,
        "day_events": day_events,
        "day_samples": day_samples,
        **load,
        "timings": {k: asdict(v) for k, v in t.items()},
    }


def backfill(bench: Bench) -> dict[str, Any]:
    """30-day single run (the asset's own code path) vs 30 one-day runs of the same code path."""
    days = [bench.first_day + timedelta(days=i) for i in range(DAYS)]
    with psycopg.connect(bench.url, autocommit=True) as conn:

        def truncate() -> None:
            conn.execute("TRUNCATE client_daily_usage")

        conn.execute(WARM_EVENTS).fetchone()
        single = measure(
            lambda: invoke_asset("client_daily_usage", bench.url, days[0], days[-1]),
            warmup=False,
            reset=truncate,
        )
        bench.progress(f"  30-day single run: {single.median:.2f}s")
        each = measure(
            lambda: [invoke_asset("client_daily_usage", bench.url, d, d) for d in days],
            warmup=False,
            reset=truncate,
        )
        bench.progress(f"  30 one-day runs: {each.median:.2f}s")
    return {"single_run": asdict(single), "one_day_runs": asdict(each)}


def size_rows(results: dict[str, Any]) -> list[Row]:
    """Floors, one-day and 30-day rollups at the largest size."""
    t = {k: v["median"] for k, v in results["sizes"][-1]["timings"].items()}
    rows = [
        Row("floor: day's count(*) of usage events", t["events_count_day"]),
        Row(
            "floor: day's table-reading scan (4 columns, no grouping), default settings",
            t["events_scan_day"],
            note="PostgreSQL may run it with parallel workers",
        ),
        Row(
            "floor: the same scan without parallel workers",
            t["events_scan_day_serial"],
            note="like the rollup: a data-modifying statement never runs in parallel",
        ),
    ]
    timings = results["sizes"][-1]["timings"]

    def _paired_note(key: str, floor: float) -> str:
        rounds = len(timings[key].get("runs", []))
        return f"median of {rounds} rounds, its floor timed alternately with it: {floor * 1000:.1f} ms"

    # (row, its time, its floor): the whole steps against the floor timed alternately with them
    # (bench.common.paired; older results.json files have no paired floor: the sequential one is used)
    scan_paired = t.get("events_scan_day_serial_paired", t["events_scan_day_serial"])
    count_paired = t.get("samples_count_day_paired", t["samples_count_day"])
    whole = "the WHOLE step: the asset's function (connect, lock, replace + fingerprint, read-back, ledger, checks)"
    for name, key, floor in (
        (f"client_daily_usage one day: {whole}", "usage_day", scan_paired),
        ("client_daily_usage one day: USAGE_DAY_REPLACE alone", "usage_replace_day", t["events_scan_day_serial"]),
    ):
        rows.append(ratio_row(name, t[key], floor, "serial scan floor", 10, "<= 10x"))
        rows[-1].note = f"{t[key] / t['events_scan_day']:.1f}x the default (parallel) scan floor"
    if "events_scan_day_serial_paired" in t:
        rows[-2].note += f"; {_paired_note('usage_day', scan_paired)}"
    rows.append(Row("floor: day's count(*) of samples", t["samples_count_day"]))
    for name, key, floor in (
        (f"system_metric_daily one day: {whole}", "metric_day", count_paired),
        ("system_metric_daily one day: METRIC_DAY_READ alone (the one-row METRIC_DAY_WRITE follows it)", "metric_upsert_day", t["samples_count_day"]),
    ):
        rows.append(ratio_row(name, t[key], floor, "day count(*)", 6, "<= 6x"))
    if "samples_count_day_paired" in t:
        rows[-2].note = _paired_note("metric_day", count_paired)
    rows.append(Row("floor: 30 days' count(*) of samples", t["samples_count_30d"]))
    rows.append(
        ratio_row(
            "system_metric_daily 30 days (asset code path)",
            t["metric_30d"],
            t["samples_count_30d"],
            "30-day count(*)",
            15,
            "<= 15x",
        )
    )
    return rows


def _ms(value: float) -> str:
    return f"{value * 1000:.1f}"


def size_details(results: dict[str, Any]) -> list[str]:
    """The time-against-size table (results.png plots the same numbers)."""
    lines = [
        "",
        "## Time against size (see results.png)",
        "",
        "| events | samples | day events | load s | count(*) day ms | scan day ms | usage day ms | "
        "metric day ms | metric 30d ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in results["sizes"]:
        t = {k: v["median"] for k, v in s["timings"].items()}
        lines.append(
            f"| {s['events']:,} | {s['samples']:,} | {s['day_events']:,} | {s['load_s']:.0f} | "
            f"{_ms(t['events_count_day'])} | {_ms(t['events_scan_day'])} | {_ms(t['usage_day'])} | "
            f"{_ms(t['metric_day'])} | {_ms(t['metric_30d'])} |"
        )
    return lines


def backfill_rows(results: dict[str, Any]) -> list[Row]:
    if "backfill" not in results:
        return []
    single = results["backfill"]["single_run"]["median"]
    each = results["backfill"]["one_day_runs"]["median"]
    return [
        ratio_row(
            "client_daily_usage 30-day single-run backfill (asset code path)",
            single,
            each,
            "30 one-day runs",
            1.2,
            "<= 1.2x",
        ),
        Row("client_daily_usage 30 one-day runs (asset code path)", each),
    ]


PLANS = Measurement("plans", lambda bench: explain_plans(bench.url, bench.day), rows=lambda results: [])
BACKFILL = Measurement("backfill", backfill, rows=backfill_rows)
