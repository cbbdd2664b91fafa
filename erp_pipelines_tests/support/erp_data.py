"""The ERP's real tables and rows for tests: the demo baseline migration, clients, modules, raw events and samples.

Why: the rollups work on exactly the shapes the app has, so tests create them from the baseline migration
and insert rows the way the app writes them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

import psycopg

from erp_pipelines.resources import DEMO_MIGRATIONS_DIR

BASELINE = DEMO_MIGRATIONS_DIR / "20251201_0000_baseline_init" / "migration.sql"

DEFAULT_THRESHOLDS = {
    "latency": {"warning": 500, "critical": 1000},
    "errorRate": {"warning": 1, "critical": 5},
    "cacheHitRate": {"warning": 70, "critical": 50},
}


def create_erp_tables(conn: psycopg.Connection, migration: Path = BASELINE) -> None:
    conn.execute(migration.read_text("utf-8"))


def add_clients(conn: psycopg.Connection, n: int) -> list[uuid.UUID]:
    ids = [uuid.UUID(int=i + 1) for i in range(n)]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO clients (id, name, slug) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            [(cid, f"client {i}", f"client-{i}") for i, cid in enumerate(ids)],
        )
    return ids


def add_modules(conn: psycopg.Connection, n: int) -> list[int]:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO modules (id, module_name, display_name) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            [(i, f"m{i}", f"Module {i}") for i in range(1, n + 1)],
        )
    return list(range(1, n + 1))


def insert_events(
    conn: psycopg.Connection, rows: Iterable[tuple[uuid.UUID, int | None, int | None, str, datetime]]
) -> None:
    """rows: (client_id, module_id, user_id, event_type, occurred_at as naive UTC)."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO client_usage_events (client_id, module_id, user_id, event_type, occurred_at) "
            "VALUES (%s, %s, %s, %s, %s)",
            list(rows),
        )


def insert_samples(
    conn: psycopg.Connection,
    rows: Iterable[tuple[int | None, float | None, int | None, int | None, datetime]],
) -> None:
    """rows: (latencyMs, errorRatePct, reqCount, errCount, collected_at as naive UTC)."""
    with conn.cursor() as cur:
        cur.executemany(
            'INSERT INTO system_metric_samples ("latencyMs", "errorRatePct", "reqCount", "errCount", collected_at) '
            "VALUES (%s, %s, %s, %s, %s)",
            list(rows),
        )


def set_health_config(
    conn: psycopg.Connection,
    metrics_days: int | None = 7,
    aggregate_days: int | None = 365,
    thresholds: dict | None = None,
) -> None:
    conn.execute(
        'INSERT INTO system_health_config (id, thresholds, "backupLocation", "metricsRetentionDays", '
        '"aggregateRetentionDays") VALUES (1, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET '
        'thresholds = EXCLUDED.thresholds, "metricsRetentionDays" = EXCLUDED."metricsRetentionDays", '
        '"aggregateRetentionDays" = EXCLUDED."aggregateRetentionDays"',
        (json.dumps(thresholds or DEFAULT_THRESHOLDS), "/backups/test", metrics_days, aggregate_days),
    )


def table_rows(conn: psycopg.Connection, query: str, params: Sequence | None = None) -> list[tuple]:
    return conn.execute(query, params).fetchall()
