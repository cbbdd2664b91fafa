"""Bench work that runs in a process of its own, so its RSS is its own: naive pandas, and Dagster runs.

Kept apart from bench/run.py on purpose: this module imports nothing heavy at the top, so the pandas
child's memory is pandas' (no Dagster loaded), and the Dagster child's is what a run process really holds.
Invoked by bench/run.py as `python -m bench.child KIND JSON`; prints one JSON line.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import threading
import time
from datetime import date, datetime, timedelta
from typing import Any

import psutil
import psycopg

PANDAS_READ = """
SELECT client_id, module_id, user_id, event_type, occurred_at FROM client_usage_events
WHERE occurred_at >= :start AND occurred_at < :end
"""
PANDAS_TABLE = "bench_pandas_usage"
PANDAS_DELETE = "DELETE FROM bench_pandas_usage WHERE date >= :first AND date < :end"


class PeakRss:
    """Samples this process's RSS every few ms in a thread: the peak while the `with` block runs."""

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.peak = 0
        self.before = 0
        self._stop = threading.Event()
        self._proc = psutil.Process()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self.interval_s)

    def __enter__(self) -> PeakRss:
        self.before = self._proc.memory_info().rss
        self.peak = self.before
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def ru_maxrss_bytes() -> int:
    """Lifetime peak RSS of this process (Linux reports kB): an upper bound for the sampled peak."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[first 00:00, last+1 00:00) as naive UTC datetimes, like erp_pipelines.partitions.day_bounds."""
    return datetime(first.year, first.month, first.day), datetime(
        last.year, last.month, last.day
    ) + timedelta(1)


def pandas_rollup(args: dict[str, Any]) -> dict[str, Any]:
    """Naive pandas rollup: read_sql the window, groupby in Python, to_sql into a scratch table.

    Same result as USAGE_DAY_REPLACE (NULL modules left out, categories matched lower-cased, active users =
    distinct non-null user_id), written the way a notebook would: all rows into the client first.
    """
    import pandas as pd
    import sqlalchemy as sa

    categories: dict[str, list[str]] = args["categories"]
    first, last = date.fromisoformat(args["first"]), date.fromisoformat(args["last"])
    start, end = _bounds(first, last)
    engine = sa.create_engine(args["sa_url"])
    with PeakRss() as rss:
        t0 = time.perf_counter()
        df = pd.read_sql(sa.text(PANDAS_READ), engine, params={"start": start, "end": end})
        events = len(df)
        df = df[df["module_id"].notna()]
        df["date"] = df["occurred_at"].dt.date
        lowered = df["event_type"].str.lower()
        for category, types in categories.items():
            df[category] = lowered.isin(types)
        out = (
            df.groupby(["date", "client_id", "module_id"])
            .agg(
                view_count=("view", "sum"),
                create_count=("create", "sum"),
                edit_count=("edit", "sum"),
                delete_count=("delete", "sum"),
                active_users=("user_id", "nunique"),
            )
            .reset_index()
        )
        out["module_id"] = out["module_id"].astype("int64")
        with engine.begin() as conn:
            conn.execute(sa.text(PANDAS_DELETE), {"first": first, "end": end.date()})
            out.to_sql(PANDAS_TABLE, conn, if_exists="append", index=False, dtype={"client_id": sa.Uuid()})
        seconds = time.perf_counter() - t0
    engine.dispose()
    return {
        "seconds": seconds,
        "events": events,
        "rows": len(out),
        "rss_before": rss.before,
        "rss_peak": rss.peak,
        "ru_maxrss": ru_maxrss_bytes(),
    }


def dagster_run(args: dict[str, Any]) -> dict[str, Any]:
    """dg.materialize of both rollups for one partition, `reps` times: run time and the process's peak RSS."""
    import dagster as dg

    from erp_pipelines.resources import ErpDatabase
    from erp_pipelines.rollups.assets import client_daily_usage, system_metric_daily

    day = date.fromisoformat(args["day"])
    day_start, _ = _bounds(day, day)
    instance = dg.DagsterInstance.ephemeral()
    resources = {"erp_db": ErpDatabase(url=args["url"])}
    times: list[float] = []
    with psycopg.connect(args["url"], autocommit=True) as conn, PeakRss() as rss:
        for _ in range(args["reps"]):
            conn.execute("DELETE FROM client_daily_usage WHERE date = %s", (day,))
            conn.execute("DELETE FROM system_metric_daily WHERE day = %s", (day_start,))
            t0 = time.perf_counter()
            result = dg.materialize(
                [system_metric_daily, client_daily_usage],
                partition_key=str(day),
                resources=resources,
                instance=instance,
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            )
            times.append(time.perf_counter() - t0)
            if not result.success:
                raise RuntimeError("materialize failed")
    return {
        "seconds": statistics.median(times),
        "runs": times,
        "rss_before": rss.before,
        "rss_peak": rss.peak,
        "ru_maxrss": ru_maxrss_bytes(),
    }


def main() -> int:
    kind, payload = sys.argv[1], sys.argv[2]
    out = {"pandas": pandas_rollup, "dagster": dagster_run}[kind](json.loads(payload))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
