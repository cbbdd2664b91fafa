"""Synthetic data for the bench: a fresh baseline schema loaded with the demo generator at one size.

Why apart: every measurement reads the same loaded database; how it is loaded (FKs and indexes dropped
for the load and recreated from the catalog, VACUUM ANALYZE) is one concern, timed and reported once.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from bench.common import CLIENTS, DAYS, MB, MODULES, Progress
from erp_pipelines import health_config as hc
from erp_pipelines.demo.generate import apply_baseline, generate_demo_data
from erp_pipelines.own_schema import own_schema_name

INSERT_HEALTH_CONFIG = """
INSERT INTO system_health_config
    (id, thresholds, "backupLocation", "refreshInterval", "metricsRetentionDays", "aggregateRetentionDays")
VALUES (1, %s, %s, %s, %s, %s)
ON CONFLICT (id) DO NOTHING
"""


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
        # our own schema too: a ledger or pruned_days left by an earlier run would make the rollups skip
        # "pruned" days and retention find nothing to delete
        for schema in ("bench_ret_batched", "bench_ret_plain", "bench_part", "bench_ret_state", own_schema_name(),
                       "public"):
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
