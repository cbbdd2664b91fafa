"""Test helpers around our own schema: record a pruned day as retention does, read the ledger."""

from __future__ import annotations

from datetime import date

import psycopg
from psycopg import sql

from erp_pipelines import own_schema


def _own(statement: str) -> sql.Composed:
    return sql.SQL(statement).format(schema=sql.Identifier(own_schema.own_schema_name()))


def install_own_schema(conn: psycopg.Connection) -> None:
    own_schema.install(conn, "public")


def record_pruned_day(conn: psycopg.Connection, raw_table: str, day: date, rollup: str, rows: int = 0) -> None:
    """What retention writes after deleting a day (for tests that delete the rows themselves)."""
    own_schema.install(conn, "public")
    conn.execute(
        _own("INSERT INTO {schema}.pruned_days (raw_table, day, rollup, rows_deleted, raw_hash) "
             "VALUES (%s, %s, %s, %s, 0)"),
        (raw_table, day, rollup, rows),
    )


def ledger_rows(conn: psycopg.Connection, rollup: str) -> dict[date, tuple[int, object]]:
    rows = conn.execute(
        _own("SELECT day, raw_rows, raw_hash FROM {schema}.rollup_ledger WHERE rollup = %s"), (rollup,)
    ).fetchall()
    return {day: (n, h) for day, n, h in rows}


def pruned_days(conn: psycopg.Connection, raw_table: str) -> dict[date, int]:
    rows = conn.execute(
        _own("SELECT day, rows_deleted FROM {schema}.pruned_days WHERE raw_table = %s"), (raw_table,)
    ).fetchall()
    return dict(rows)


def marks(conn: psycopg.Connection, raw_table: str) -> list[date]:
    rows = conn.execute(
        _own("SELECT day FROM {schema}.invalidations WHERE raw_table = %s ORDER BY day"), (raw_table,)
    ).fetchall()
    return [d for (d,) in rows]


def grant_own_schema(conn: psycopg.Connection, role: str, upgrade: bool = True) -> None:
    """Install our schema (as the schema owner would, through pipeline_state) and the documented grants
    (`upgrade=False`: grants only, the tables left as they are)."""
    if upgrade:
        own_schema.install(conn, "public")
    for statement in (
        "GRANT USAGE ON SCHEMA {schema} TO {role}",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON {schema}.rollup_ledger TO {role}",
        "GRANT SELECT, INSERT ON {schema}.pruned_days TO {role}",
        "GRANT SELECT, INSERT, DELETE ON {schema}.invalidations TO {role}",
    ):
        conn.execute(sql.SQL(statement).format(
            schema=sql.Identifier(own_schema.own_schema_name()), role=sql.Identifier(role)))
