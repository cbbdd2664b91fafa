"""The project's own schema (`erp_pipelines` by default): the rollup ledger, the pruned-day ledger and the
invalidation log that change capture writes.

Why a schema of our own: Prisma's drift detection (`prisma migrate diff`/`status`) and our own schema sync
look only at the ERP's schema (`public` by default), so nothing here ever shows up as drift, and an operator
can drop the whole schema without touching ERP data (docs/own_schema.md lists it and its grants).

- `rollup_ledger`: per rollup (aggregate table) and UTC day, the exact fingerprint of the raw rows the
  aggregate was computed from (row count + an order-independent hash of every column the rollup reads),
  written in the same transaction as the aggregate, and the seal of the aggregate row(s) when the write
  verified them against an independent recomputation (`aggregate_hash`). Retention deletes a raw day only
  when the day's current fingerprint equals this one, read in one snapshot taken after the rollup lock.
- `pruned_days`: per raw table and day, what retention deleted (rows, fingerprint) and when. A pruned day's
  aggregate is never rebuilt from the (partial) raw rows left or arriving later.
- `invalidations`: append-only (raw table, day) marks written by statement-level triggers on the raw
  tables (erp_pipelines.capture); a rollup deletes the marks its snapshot saw, in its write transaction.

All DDL is idempotent (IF NOT EXISTS) and additive; `install` runs it in the caller's transaction.

One schema of ours serves ONE ERP schema. Its tables are keyed by table name and day, so two ERP schemas
of one database (schema-per-tenant, staging beside production) sharing it would mix their days: tenant
A's pruned day would keep tenant B's aggregate from ever being built. So the schema carries a claim, its
COMMENT (`erp-pipelines state for ERP schema: <name>`), written when it is created; a run for another
ERP schema stops with an error naming both and the setting to change (`check_claim`).
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from erp_pipelines import settings
from erp_pipelines.errors import ErpPipelinesError

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
# Added after the first release: `rollup_ledger.aggregate_hash`, the seal of the aggregate row(s) the write
# verified against an independent recomputation (NULL: not verified; rollups/ledger.py verification_seal).
# Only when missing (ALTER TABLE needs the table's owner even when there is nothing to do); two runs
# upgrading at once both succeed.
UPGRADE = """
DO $upgrade$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = {ledger}::regclass
                   AND attname = 'aggregate_hash' AND NOT attisdropped) THEN
        ALTER TABLE {schema}.rollup_ledger ADD COLUMN aggregate_hash numeric;
    END IF;
EXCEPTION WHEN duplicate_column THEN NULL;
END $upgrade$;
"""


def own_schema_name() -> str:
    """Our schema's name: ERP_PIPELINES_SCHEMA, default `erp_pipelines`."""
    return settings.own_schema()


CLAIM_PREFIX = "erp-pipelines state for ERP schema: "
# %(schema)s: the quoted name (sql.Identifier(...).as_string), as to_regnamespace reads it
READ_CLAIM = "SELECT obj_description(to_regnamespace(%(schema)s), 'pg_namespace')"


def claim_text(erp_schema: str) -> str:
    return CLAIM_PREFIX + erp_schema


def install(conn: psycopg.Connection, erp_schema: str, schema: str | None = None) -> None:
    """Create our schema and its tables if missing (idempotent), in the caller's transaction, and claim
    the schema for `erp_schema` if nobody has; an existing claim for another ERP schema is an error."""
    name = schema or own_schema_name()
    conn.execute(sql.SQL(DDL).format(schema=sql.Identifier(name)))
    upgrade(conn, name)
    claimed = conn.execute(READ_CLAIM, {"schema": sql.Identifier(name).as_string(conn)}).fetchone()[0]
    if claimed is None:
        try:
            with conn.transaction():  # a savepoint: only the schema's owner may comment on it
                conn.execute(
                    sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
                        sql.Identifier(name), sql.Literal(claim_text(erp_schema))
                    )
                )
        except psycopg.errors.InsufficientPrivilege:
            pass  # left unclaimed until its owner installs it (pipeline_state)
        return
    check_claim(name, claimed, erp_schema)


def upgrade(conn: psycopg.Connection, schema: str | None = None) -> None:
    """Bring tables of an older version up to this one (UPGRADE), in the caller's transaction."""
    name = schema or own_schema_name()
    ledger = sql.Literal(sql.Identifier(name, "rollup_ledger").as_string(conn))
    conn.execute(sql.SQL(UPGRADE).format(schema=sql.Identifier(name), ledger=ledger))


def check_claim(schema: str, claimed: str | None, erp_schema: str) -> None:
    """Raise when our schema already serves another ERP schema (module docstring). No claim (a schema
    created before claims existed, or a comment of the operator's own) is accepted as it is."""
    if claimed is None or not claimed.startswith(CLAIM_PREFIX):
        return
    owner = claimed[len(CLAIM_PREFIX):]
    if owner == erp_schema:
        return
    raise ErpPipelinesError(
        f"Our schema {schema} already keeps the rollup ledger, pruned days and change log of ERP schema "
        f"{owner!r}; this run is for ERP schema {erp_schema!r}. Sharing it would mix the two schemas' days "
        "(one's pruned day would stop the other's aggregate from being built), so nothing was written.",
        where=f"ERP_PIPELINES_SCHEMA={schema}, ERP_DATABASE_SCHEMA={erp_schema}",
        fix=f"Give {erp_schema!r} a schema of its own: set ERP_PIPELINES_SCHEMA (e.g. erp_pipelines_{erp_schema}) "
        f"for its code location. If {schema} really was moved to this ERP schema, run "
        f"`COMMENT ON SCHEMA {schema} IS '{claim_text(erp_schema)}'` as its owner.",
    )
