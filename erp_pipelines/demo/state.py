"""Loading the seed's drifted production state into an empty database (for `make run` and tests)."""

from __future__ import annotations

from pathlib import Path

import psycopg

DRIFTED_STATE_SQL = Path(__file__).resolve().parent / "drifted_state.sql"


def database_is_empty(conn: psycopg.Connection, schema: str = "public") -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
        (schema,),
    ).fetchone()
    return row[0] == 0


def load_drifted_state(conn: psycopg.Connection) -> bool:
    """Load drifted_state.sql in one transaction if the database has no tables; True if it loaded."""
    with conn.transaction():
        if not database_is_empty(conn):
            return False
        conn.execute(DRIFTED_STATE_SQL.read_text("utf-8"))
    return True
