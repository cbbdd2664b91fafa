"""Naive pandas (read_sql -> groupby -> to_sql) for 1 and 30 days, in a child process: what the SQL rollup saves.

Why a child process: its peak RSS is pandas' own; 30 days at 10M events would need several GB, so it is
estimated from the one-day bytes per event when the projection exceeds 4 GB (results.md says so).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from bench.asset_calls import categories
from bench.common import MB, REPEAT, SLOW_RUN_S, Bench, Measurement, Row, run_child

PANDAS_TABLE = "bench_pandas_usage"
PANDAS_MEMORY_LIMIT = 4 * 1024**3


def run(bench: Bench, day_events: int, events_30d: int) -> dict[str, Any]:
    """Naive pandas for 1 day (measured) and 30 days (measured, or estimated when it would need > 4 GB)."""
    with psycopg.connect(bench.url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} (LIKE client_daily_usage INCLUDING ALL)").format(
                sql.Identifier(PANDAS_TABLE)
            )
        )
    by_category = {k.removesuffix("_types"): v for k, v in categories().items()}
    one = {"first": bench.day, "last": bench.day, "sa_url": bench.sa_url, "categories": by_category}
    runs = [run_child("pandas", one, timeout_s=600) for _ in range(REPEAT)]
    day = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
    day["runs"] = [r["seconds"] for r in runs]
    per_event = max(0.0, (max(r["rss_peak"] for r in runs) - day["rss_before"]) / max(day_events, 1))
    estimate = day["rss_before"] + per_event * events_30d
    out: dict[str, Any] = {"one_day": day, "bytes_per_event": per_event, "estimated_30d_rss": estimate}
    bench.progress(
        f"  pandas 1 day: {day['seconds']:.2f}s, peak RSS {day['rss_peak'] / MB:.0f} MB "
        f"({per_event:.0f} B/event) -> 30 days ~{estimate / MB:.0f} MB"
    )
    if estimate > PANDAS_MEMORY_LIMIT:
        out["thirty_days"] = {
            "seconds": day["seconds"] * events_30d / max(day_events, 1),
            "rss_peak": estimate,
            "estimated": True,
        }
        bench.notes.append(
            f"Naive pandas for 30 days was NOT run: at {per_event:.0f} bytes/event it would need "
            f"~{estimate / 1024**3:.1f} GB (> 4 GB). Its time and memory are extrapolated linearly from the "
            "one-day run (events ratio)."
        )
    elif bench.minutes_left() < 8:
        out["thirty_days"] = {
            "seconds": day["seconds"] * events_30d / max(day_events, 1),
            "rss_peak": estimate,
            "estimated": True,
        }
        bench.notes.append(
            "Naive pandas for 30 days was estimated, not run: the time budget was nearly used."
        )
    else:
        thirty = {
            "first": bench.first_day,
            "last": bench.end_day,
            "sa_url": bench.sa_url,
            "categories": by_category,
        }
        first = run_child("pandas", thirty, timeout_s=1200)
        runs30 = [first]
        if first["seconds"] < SLOW_RUN_S:
            runs30 += [run_child("pandas", thirty, timeout_s=1200) for _ in range(REPEAT - 1)]
        else:
            bench.notes.append(f"Naive pandas 30 days: one run only (took {first['seconds']:.0f}s).")
        mid = sorted(runs30, key=lambda r: r["seconds"])[len(runs30) // 2]
        mid["runs"] = [r["seconds"] for r in runs30]
        mid["estimated"] = False
        out["thirty_days"] = mid
        bench.progress(f"  pandas 30 days: {mid['seconds']:.2f}s, peak RSS {mid['rss_peak'] / MB:.0f} MB")
    return out


def rows(results: dict[str, Any]) -> list[Row]:
    if "pandas" not in results:
        return []
    rollup_day = results["sizes"][-1]["timings"]["usage_day"]["median"]
    pd_day = results["pandas"]["one_day"]["seconds"]
    speedup = pd_day / rollup_day
    out = [
        Row(
            "naive pandas one day (read_sql, groupby, to_sql)",
            pd_day,
            speedup,
            "x slower than the rollup",
            ">= 5x",
            speedup >= 5,
        )
    ]
    thirty = results["pandas"]["thirty_days"]
    if "backfill" in results:
        speedup = thirty["seconds"] / results["backfill"]["single_run"]["median"]
        out.append(
            Row(
                "naive pandas 30 days" + (" (ESTIMATED)" if thirty.get("estimated") else ""),
                thirty["seconds"],
                speedup,
                "x slower than the backfill",
                ">= 5x",
                speedup >= 5,
            )
        )
    return out


def details(results: dict[str, Any]) -> list[str]:
    if "pandas" not in results:
        return []
    p = results["pandas"]
    return [
        "",
        "## Naive pandas memory",
        "",
        f"- one day: peak RSS {p['one_day']['rss_peak'] / MB:.0f} MB (process before the work: "
        f"{p['one_day']['rss_before'] / MB:.0f} MB), {p['bytes_per_event']:.0f} bytes per event read",
        f"- 30 days: peak RSS {p['thirty_days']['rss_peak'] / MB:.0f} MB"
        + (" (ESTIMATED from bytes/event)" if p["thirty_days"].get("estimated") else " (measured)"),
    ]


PANDAS = Measurement(
    "pandas",
    lambda bench: run(
        bench,
        bench.results["sizes"][-1]["day_events"],
        bench.results["sizes"][-1]["counts"]["client_usage_events"],
    ),
    rows=rows,
    details=details,
)
