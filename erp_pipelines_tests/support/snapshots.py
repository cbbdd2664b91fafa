"""Whole-database snapshots (catalog, Prisma history, row counts): "exactly as before or as after" in one value."""

from __future__ import annotations

import psycopg
from psycopg import sql

from erp_pipelines.prisma.catalog import inspect


def catalog_snapshot(conn: psycopg.Connection, schema: str = "public") -> tuple:
    """Tables/columns, indexes, constraints, sequences, enums of the schema (names and definitions)."""
    with conn.transaction():
        cat = inspect(conn, schema)
    return (
        {t: dict(v.columns) for t, v in cat.tables.items()},
        dict(cat.indexes),
        dict(cat.constraints),
        {k: (s.data_type, s.increment, s.owned_by) for k, s in cat.sequences.items()},
        dict(cat.enums),
    )


def history_snapshot(conn: psycopg.Connection) -> list[tuple]:
    """_prisma_migrations without ids and timestamps (which differ between two equal runs)."""
    if conn.execute("SELECT to_regclass('public._prisma_migrations')").fetchone()[0] is None:
        return []
    return conn.execute(
        "SELECT migration_name, checksum, finished_at IS NOT NULL, rolled_back_at IS NOT NULL, "
        "applied_steps_count, logs FROM _prisma_migrations ORDER BY migration_name, finished_at IS NOT NULL, "
        "rolled_back_at IS NOT NULL"
    ).fetchall()


def row_counts(conn: psycopg.Connection, schema: str = "public") -> dict[str, int]:
    tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))]
    return {
        t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, t))).fetchone()[0]
        for t in sorted(tables)
    }


def full_snapshot(conn: psycopg.Connection) -> tuple:
    return catalog_snapshot(conn), history_snapshot(conn), row_counts(conn)
