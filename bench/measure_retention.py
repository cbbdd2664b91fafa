"""Retention against one DELETE, and the partition-drop alternative (for docs/scaling.md).

Why: retention is the one place that deletes data in bulk; its goal is that no statement holds locks for
long (every `Connection.execute` of the real asset is timed) and that batching costs little in total.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from bench.asset_calls import invoke_asset
from bench.common import DAYS, QUIET_RUN, REPEAT, Bench, Measurement, Progress, Row, median_of, ratio_row
from erp_pipelines import health_config as hc
from erp_pipelines.partitions import day_bounds
from erp_pipelines.rollups import sql as rollup_sql


@contextmanager
def statement_timer() -> Iterator[list[tuple[str, float]]]:
    """Time every psycopg `Connection.execute` in this process (the retention asset's own statements)."""
    from erp_pipelines.retention import sql as retention_sql
    from erp_pipelines.rollups.spec import RAW_ROW_HASH_MARK

    names = {
        text: name
        for module in (retention_sql, rollup_sql)
        for name, text in vars(module).items()
        if name.isupper() and isinstance(text, str)
    }
    # statements with the per-row hash put in (RollupSpec.bind): known by their text before the mark
    bound_prefixes = {
        text.split(RAW_ROW_HASH_MARK)[0]: name for text, name in names.items() if RAW_ROW_HASH_MARK in text
    }

    def _bound_name(text: str) -> str | None:
        return next((name for prefix, name in bound_prefixes.items() if text.startswith(prefix)), None)

    records: list[tuple[str, float]] = []
    original = psycopg.Connection.execute

    def timed(self: psycopg.Connection, query: Any, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(self, query, params, *args, **kwargs)
        finally:
            text = query if isinstance(query, str) else query.as_string(self)
            label = names.get(text) or _bound_name(text) or " ".join(text.split())[:60]
            if _DELETES_RAW_ROWS.search(text):  # the batches, composed per table (retention/sql.py)
                label = "DELETE batch: " + label
            records.append((label, time.perf_counter() - t0))

    psycopg.Connection.execute = timed  # type: ignore[method-assign]
    try:
        yield records
    finally:
        psycopg.Connection.execute = original  # type: ignore[method-assign]


_DELETES_RAW_ROWS = re.compile(r"DELETE\s+FROM\s+\S*(system_metric_samples|client_usage_events)", re.IGNORECASE)
# Our own schema for the retention copies: a copy holds exactly the public tables' rows, so the public
# tables' ledger is the copy's ledger; a fresh schema per run keeps one run's `pruned_days` from turning
# the next run's days into "already pruned" (which would delete nothing and time nothing).
STATE_SCHEMA = "bench_ret_state"
BATCHED = "bench_ret_batched"  # the copy retention runs on (the other copy takes the one plain DELETE)

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


def fresh_state(conn: psycopg.Connection, schema: str) -> None:
    """Our own schema for one retention copy, holding the rollup ledger of the public tables (same rows)."""
    from erp_pipelines import own_schema

    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    own_schema.install(conn, BATCHED, schema)
    conn.execute(
        sql.SQL("INSERT INTO {} SELECT * FROM {}").format(
            sql.Identifier(schema, "rollup_ledger"), sql.Identifier(own_schema.own_schema_name(), "rollup_ledger")
        )
    )


@contextmanager
def _own_schema(schema: str) -> Iterator[None]:
    """ERP_PIPELINES_SCHEMA set to `schema` for the retention run (settings are read when used)."""
    from erp_pipelines import settings

    before = os.environ.get(settings.OWN_SCHEMA)
    os.environ[settings.OWN_SCHEMA] = schema
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(settings.OWN_SCHEMA, None)
        else:
            os.environ[settings.OWN_SCHEMA] = before


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
        fresh_state(conn, STATE_SCHEMA)
        # The copies wrote ~1 GB of WAL: without this, the checkpoint they request runs during the measured
        # deletes (its fsyncs stalled single statements 100-170 ms in runs of 2026-12-05, p99 25-30 ms)
        conn.execute("CHECKPOINT")
    with statement_timer() as records, _own_schema(STATE_SCHEMA):
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
        conn.execute("CHECKPOINT")  # the same clean start for the plain DELETE
        t0 = time.perf_counter()
        plain = conn.execute(
            sql.SQL("DELETE FROM {} WHERE collected_at < %s").format(
                sql.Identifier("bench_ret_plain", "system_metric_samples")
            ),
            (cutoff,),
        ).rowcount
        plain_s = time.perf_counter() - t0
        for schema in ("bench_ret_batched", "bench_ret_plain", STATE_SCHEMA):
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    deletes = [s for label, s in records if label.startswith("DELETE batch")]
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


def _repeats(bench: Bench, what: str) -> int:
    """Three runs, or one when the time budget is nearly used (noted)."""
    if bench.minutes_left() > 6:
        return REPEAT
    bench.notes.append(f"{what}: one run (time budget).")
    return 1


def run_retention(bench: Bench) -> list[dict[str, Any]]:
    reps = _repeats(bench, "Retention")
    invoke_asset("system_metric_daily", bench.url, bench.first_day, bench.end_day)  # it needs them
    return [retention_once(bench.url, bench.progress) for _ in range(reps)]


def run_partitions(bench: Bench) -> list[dict[str, Any]]:
    reps = _repeats(bench, "Partition drop")
    return [partition_once(bench.url, bench.first_day, bench.progress) for _ in range(reps)]


def retention_rows(results: dict[str, Any]) -> list[Row]:
    if not results.get("retention"):
        return []
    runs = results["retention"]
    longest = max(r["longest_statement_s"] for r in runs)
    per_run = ", ".join(f"{r['longest_statement_s'] * 1000:.0f}" for r in runs)
    p99 = ", ".join(f"{r['p99_statement_s'] * 1000:.0f}" for r in runs)
    sql_s, plain_s = median_of(runs, "asset_sql_s"), median_of(runs, "plain_delete_s")
    total = ratio_row(
        "retention: asset's total SQL time (batched, per-day txns)",
        sql_s,
        plain_s,
        "one DELETE",
        1.5,
        "<= 1.5x",
    )
    total.note = f"asset wall time incl. Dagster: {median_of(runs, 'asset_wall_s'):.2f}s"
    return [
        Row(
            "retention: longest single statement (worst of runs)",
            longest,
            None,
            "",
            "<= 0.1 s",
            longest <= 0.1,
            next(r["longest_statement"] for r in runs if r["longest_statement_s"] == longest)
            + f"; longest per run (ms): {per_run}; p99 per run (ms): {p99}",
        ),
        total,
        Row("retention: one plain DELETE of the same rows", plain_s, note=f"{runs[0]['plain_rows']:,} rows"),
    ]


def retention_details(results: dict[str, Any]) -> list[str]:
    if not results.get("retention"):
        return []
    r = results["retention"][0]
    return [
        "",
        "## Retention detail (first run)",
        "",
        f"- rows deleted: {r['rows_deleted']:,} ({r['days_skipped']} day(s) skipped), "
        f"{r['delete_statements']} DELETE statements (ranges of heap blocks, or batches walked by timestamp), "
        f"{r['statements']} statements in all",
        f"- longest statement {r['longest_statement_s'] * 1000:.1f} ms ({r['longest_statement']}), "
        f"longest DELETE {r['longest_delete_s'] * 1000:.1f} ms",
        f"- asset SQL {r['asset_sql_s']:.2f}s, asset wall time {r['asset_wall_s']:.2f}s, one DELETE "
        f"{r['plain_delete_s']:.2f}s",
        "- SQL time by statement (s): "
        + ", ".join(f"{k} {v:.2f}" for k, v in r["sql_s_by_statement"].items()),
        "- statement times are measured client-side around each `Connection.execute` of the real "
        "asset (COMMITs are not included).",
    ]


def partition_rows(results: dict[str, Any]) -> list[Row]:
    if not results.get("partitions"):
        return []
    runs = results["partitions"]
    drop_s, delete_s = median_of(runs, "detach_drop_total_s"), median_of(runs, "delete_s")
    return [
        Row(
            "partitioned samples: DETACH CONCURRENTLY + DROP of old days",
            drop_s,
            drop_s / delete_s,
            "DELETE on a plain copy",
            "(for docs/scaling.md)",
            None,
            f"longest statement {max(r['longest_statement_s'] for r in runs) * 1000:.0f} ms",
        )
    ]


def partition_details(results: dict[str, Any]) -> list[str]:
    if not results.get("partitions"):
        return []
    p = results["partitions"][0]
    return [
        "",
        "## Partition-drop alternative (first run)",
        "",
        f"- DELETE of {p['rows_deleted']:,} rows on a plain copy: {p['delete_s']:.2f}s (one statement)",
        f"- DETACH PARTITION CONCURRENTLY + DROP TABLE of {p['partitions_dropped']} daily partitions: "
        f"{p['detach_drop_total_s']:.2f}s in all, longest statement {p['longest_statement_s'] * 1000:.0f} ms",
    ]


RETENTION = Measurement("retention", run_retention, rows=retention_rows, details=retention_details)
PARTITIONS = Measurement("partitions", run_partitions, rows=partition_rows, details=partition_details)
