"""A row-level audit trail of every ERP write, of the tests' own: the oracle of the generated write-stream test.

Why: the generated test must judge retention by what really happened to each raw row, not by our own
ledger (which it is testing, and which a dropped own schema loses). A row-level AFTER trigger in a
test-only schema (`erp_audit`) records each INSERT, UPDATE and DELETE on the raw tables with the old and new
row as jsonb, and whether our retention made it (retention switches `erp_pipelines.capture` off for its
transaction). `ENABLE ALWAYS`: it fires with `session_replication_role = replica` too, when the capture
triggers do not.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

import psycopg

from erp_pipelines.capture.triggers import SKIP_SETTING

RAW_TABLES = {"client_usage_events": "occurred_at", "system_metric_samples": "collected_at"}

INSTALL = """
CREATE SCHEMA IF NOT EXISTS erp_audit;
CREATE TABLE IF NOT EXISTS erp_audit.writes (
    seq          bigserial PRIMARY KEY,
    raw_table    text NOT NULL,
    op           text NOT NULL,
    old_row      jsonb,
    new_row      jsonb,
    by_retention boolean NOT NULL
);
CREATE OR REPLACE FUNCTION erp_audit.record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO erp_audit.writes (raw_table, op, old_row, new_row, by_retention)
    VALUES (TG_TABLE_NAME, TG_OP,
            CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
            CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END,
            coalesce(current_setting('erp_pipelines.capture', true), '') = 'off');
    RETURN NULL;
END $$;
"""
TRIGGER = """
DROP TRIGGER IF EXISTS zz_erp_audit ON {table};
CREATE TRIGGER zz_erp_audit AFTER INSERT OR UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION erp_audit.record();
ALTER TABLE {table} ENABLE ALWAYS TRIGGER zz_erp_audit;
"""
assert SKIP_SETTING == "erp_pipelines.capture"  # retention's switch, read by the audit function


def install_audit(conn: psycopg.Connection) -> None:
    conn.execute(INSTALL)
    for table in RAW_TABLES:
        conn.execute(TRIGGER.format(table=table))


def reset_audit(conn: psycopg.Connection) -> None:
    conn.execute("TRUNCATE erp_audit.writes")


def parse_ts(value: str | None) -> datetime | None:
    """A jsonb timestamp -> naive datetime; None for NULL and for values Python cannot hold (no day)."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def as_event(row: dict[str, Any]) -> tuple:
    import uuid

    return (uuid.UUID(row["client_id"]), row["module_id"], row["user_id"], row["event_type"],
            parse_ts(row["occurred_at"]))


def as_sample(row: dict[str, Any]) -> tuple:
    return (row["latencyMs"], row["errorRatePct"], row["reqCount"], row["errCount"], parse_ts(row["collected_at"]))


AS_TUPLE = {"client_usage_events": as_event, "system_metric_samples": as_sample}


def retention_deletes(conn: psycopg.Connection) -> dict[tuple[str, date | None], list[tuple]]:
    """(raw table, UTC day) -> the rows our retention deleted there (from the audit trail)."""
    found: dict[tuple[str, date | None], list[tuple]] = defaultdict(list)
    for raw_table, old in conn.execute(
        "SELECT raw_table, old_row FROM erp_audit.writes WHERE op = 'DELETE' AND by_retention ORDER BY seq"
    ).fetchall():
        row = AS_TUPLE[raw_table](old)
        found[(raw_table, row[-1].date() if row[-1] else None)].append(row)
    return dict(found)
