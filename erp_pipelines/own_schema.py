"""The project's own schema (`erp_pipelines` by default): the rollup ledger, the pruned-day ledger and the
invalidation log that change capture writes.

Why a schema of our own: Prisma's drift detection (`prisma migrate diff`/`status`) and our own schema sync
look only at the ERP's schema (`public` by default), so nothing here ever shows up as drift, and an operator
can drop the whole schema without touching ERP data (docs/own_schema.md lists it and its grants).

- `rollup_ledger`: per rollup (aggregate table) and UTC day, the exact fingerprint of the raw rows the
  aggregate was computed from (row count + an order-independent hash of every column the rollup reads),
  written in the same transaction as the aggregate. Retention deletes a raw day only when the day's current
  fingerprint equals this one, read in one snapshot taken after the rollup lock.
- `pruned_days`: per raw table and day, what retention deleted (rows, fingerprint) and when. A pruned day's
  aggregate is never rebuilt from the (partial) raw rows left or arriving later.
- `invalidations`: append-only (raw table, day) marks written by statement-level triggers on the raw
  tables (erp_pipelines.capture); a rollup deletes the marks its snapshot saw, in its write transaction.

All DDL is idempotent (IF NOT EXISTS) and additive; `install` runs it in the caller's transaction.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from erp_pipelines import settings

DEFAULT_OWN_SCHEMA = settings.DEFAULT_OWN_SCHEMA
OWN_SCHEMA_ENV = settings.OWN_SCHEMA

DDL = """
CREATE SCHEMA IF NOT EXISTS {schema};

CREATE TABLE IF NOT EXISTS {schema}.rollup_ledger (
    rollup       text        NOT NULL,  -- the aggregate table, e.g. system_metric_daily
    day          date        NOT NULL,  -- the UTC day (partition key)
    raw_rows     bigint      NOT NULL,  -- raw rows of the day the aggregate was computed from
    raw_hash     numeric     NOT NULL,  -- order-independent hash of every column the rollup reads
    computed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rollup, day)
);

CREATE TABLE IF NOT EXISTS {schema}.pruned_days (
    raw_table    text        NOT NULL,  -- e.g. system_metric_samples
    day          date        NOT NULL,
    rollup       text        NOT NULL,  -- the aggregate that holds the deleted rows
    rows_deleted bigint      NOT NULL,
    raw_hash     numeric     NOT NULL,  -- the fingerprint the deleted rows had (equal to the ledger's)
    pruned_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (raw_table, day)
);

CREATE TABLE IF NOT EXISTS {schema}.invalidations (
    raw_table    text        NOT NULL,
    day          date        NOT NULL,
    marked_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS invalidations_table_day ON {schema}.invalidations (raw_table, day);
"""


def own_schema_name() -> str:
    """Our schema's name: ERP_PIPELINES_SCHEMA, default `erp_pipelines`."""
    return settings.own_schema()


def install(conn: psycopg.Connection, schema: str | None = None) -> None:
    """Create our schema and its tables if missing (idempotent), in the caller's transaction."""
    conn.execute(sql.SQL(DDL).format(schema=sql.Identifier(schema or own_schema_name())))
