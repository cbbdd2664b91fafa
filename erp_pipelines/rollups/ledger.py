"""The ledger the rollups and retention keep in our own schema: what each aggregate was computed from,
which raw days were pruned, and the invalidation marks a rollup clears.

Tables (erp_pipelines/own_schema.py): `rollup_ledger` (rollup, day) -> the exact fingerprint of the raw rows
the aggregate was computed from, written in the same transaction and snapshot as the aggregate, and the seal
of the aggregate row(s) when the write verified them against an independent recomputation (`aggregate_hash`:
their hash sealed with that fingerprint, `verification_seal`; NULL otherwise);
`pruned_days` (raw_table, day) -> what retention deleted, written in the deleting transaction;
`invalidations` (raw_table, day) marks written by the capture triggers (erp_pipelines.capture) and by
retention when it skips a day that changed. A rollup deletes the marks of its days that its snapshot sees,
so a mark committed after the snapshot survives and asks for another refresh.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import psycopg
from psycopg import sql

from erp_pipelines import own_schema
from erp_pipelines.dbwork import autocommit
from erp_pipelines.errors import ErpPipelinesError

# Privileges on our own tables (docs/privileges.md); named in MissingGrant.
OWN_PRIVILEGES = {
    "rollup_ledger": "SELECT, INSERT, UPDATE, DELETE",
    "pruned_days": "SELECT, INSERT",
    "invalidations": "SELECT, INSERT, DELETE",
}

# Present and current: the three tables, and the ledger's `aggregate_hash` (added by a later version: an
# older install is upgraded by `install`, own_schema.py).
OWN_TABLES_EXIST = """
SELECT to_regclass(%(ledger)s) IS NOT NULL AND to_regclass(%(pruned)s) IS NOT NULL
       AND to_regclass(%(log)s) IS NOT NULL,
       EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%(ledger)s)
               AND attname = 'aggregate_hash' AND NOT attisdropped),
       obj_description(to_regnamespace(%(schema)s), 'pg_namespace')
"""
LEDGER_READ = sql.SQL(
    "SELECT day, raw_rows, raw_hash, aggregate_hash FROM {schema}.rollup_ledger "
    "WHERE rollup = %(rollup)s AND day = ANY(%(days)s)"
)
# Rewritten only when something changed, so a re-run without changes leaves the row identical.
LEDGER_WRITE = sql.SQL(
    """
INSERT INTO {schema}.rollup_ledger AS l (rollup, day, raw_rows, raw_hash, aggregate_hash, computed_at)
VALUES (%(rollup)s, %(day)s, %(raw_rows)s, %(raw_hash)s, %(aggregate_hash)s, now())
ON CONFLICT (rollup, day) DO UPDATE SET
    raw_rows = EXCLUDED.raw_rows, raw_hash = EXCLUDED.raw_hash, aggregate_hash = EXCLUDED.aggregate_hash,
    computed_at = EXCLUDED.computed_at
WHERE (l.raw_rows, l.raw_hash, l.aggregate_hash)
      IS DISTINCT FROM (EXCLUDED.raw_rows, EXCLUDED.raw_hash, EXCLUDED.aggregate_hash)
"""
)
LEDGER_DELETE_BEFORE = sql.SQL("DELETE FROM {schema}.rollup_ledger WHERE rollup = %(rollup)s AND day < %(cutoff_day)s")
PRUNED_READ = sql.SQL(
    "SELECT day, rows_deleted FROM {schema}.pruned_days WHERE raw_table = %(raw_table)s AND day = ANY(%(days)s)"
)
PRUNED_WRITE = sql.SQL(
    """
INSERT INTO {schema}.pruned_days (raw_table, day, rollup, rows_deleted, raw_hash)
VALUES (%(raw_table)s, %(day)s, %(rollup)s, %(rows_deleted)s, %(raw_hash)s)
"""
)
CLEAR_MARKS = sql.SQL("DELETE FROM {schema}.invalidations WHERE raw_table = %(raw_table)s AND day = ANY(%(days)s)")
MARK_DAY = sql.SQL("INSERT INTO {schema}.invalidations (raw_table, day) VALUES (%(raw_table)s, %(day)s)")
MARK_DAY_ONCE = sql.SQL(
    "INSERT INTO {schema}.invalidations (raw_table, day) SELECT %(raw_table)s, %(day)s "
    "WHERE NOT EXISTS (SELECT 1 FROM {schema}.invalidations WHERE raw_table = %(raw_table)s AND day = %(day)s)"
)


@dataclass(frozen=True)
class Fingerprint:
    """Row count and exact order-independent hash of one raw day (rollups/spec.py FINGERPRINT_TEMPLATE)."""

    raw_rows: int
    raw_hash: Decimal


@dataclass(frozen=True)
class LedgerEntry:
    """One day of `rollup_ledger`: the raw rows' fingerprint, and the seal of the aggregate row(s) the write
    verified against an independent recomputation (`verification_seal`; None: not verified, or written by
    an older version)."""

    fingerprint: Fingerprint
    aggregate_hash: Decimal | None = None

    @property
    def raw_rows(self) -> int:
        return self.fingerprint.raw_rows

    def verifies(self, fingerprint: Fingerprint, row_hash: object) -> bool:
        """True when the write verified an aggregate whose row(s) hash to `row_hash` now, computed from raw
        rows with `fingerprint` (the ones there now): the seal recorded equals the seal of both."""
        return (
            self.aggregate_hash is not None and row_hash is not None
            and self.aggregate_hash == verification_seal(fingerprint, Decimal(row_hash))
        )


def verification_seal(fingerprint: Fingerprint, row_hash: Decimal) -> Decimal:
    """What `rollup_ledger.aggregate_hash` holds: the verified row's hash sealed together with the fingerprint
    of the raw rows it was verified against (128 bits of SHA-256 over the three numbers). Why not the row's
    hash alone (found by review): a writer that updates the fingerprint but not this column (an older
    version's LEDGER_WRITE, after a downgrade) would leave a verification standing for rows it never saw;
    sealed, it no longer matches the new fingerprint, and retention recomputes the day."""
    text = f"{fingerprint.raw_rows}:{int(fingerprint.raw_hash)}:{int(row_hash)}"
    return Decimal(int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "big"))


def _q(statement: sql.SQL, schema: str | None) -> sql.Composed:
    return statement.format(schema=sql.Identifier(schema or own_schema.own_schema_name()))


def ensure_own_schema(conn: psycopg.Connection, erp_schema: str, schema: str | None = None) -> None:
    """Our tables exist (installed by the `pipeline_state` asset) and serve `erp_schema` (own_schema.py:
    one schema of ours per ERP schema); if missing, try to install them (idempotent), and say what to do
    when the role may not."""
    name = schema or own_schema.own_schema_name()
    names = {k: sql.Identifier(name, t).as_string(conn) for k, t in
             (("ledger", "rollup_ledger"), ("pruned", "pruned_days"), ("log", "invalidations"))}
    with autocommit(conn):  # one round trip; called between transactions
        present, current, claimed = conn.execute(
            OWN_TABLES_EXIST, {**names, "schema": sql.Identifier(name).as_string(conn)}
        ).fetchone()
    own_schema.check_claim(name, claimed, erp_schema)
    if present and current:
        return
    if present:  # a ledger of an older version: only its new column is added (by the table's owner)
        _upgrade(conn, name, names["ledger"])
        return
    try:
        with conn.transaction():
            own_schema.install(conn, erp_schema, name)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise ErpPipelinesError(
            f"Our own schema {name} (rollup ledger, pruned days, invalidation log) is missing and this role may "
            f"not create it: {exc.diag.message_primary}.",
            where=f"schema {name}",
            fix="Materialize `pipeline_state` (schema group) as the schema owner, or GRANT CREATE ON DATABASE "
            "to this role (docs/own_schema.md).",
        ) from None


LEDGER_OWNER = "SELECT tableowner FROM pg_tables WHERE schemaname = %(schema)s AND tablename = 'rollup_ledger'"


def _upgrade(conn: psycopg.Connection, schema: str, ledger: str) -> None:
    """Add the column a later version brought (own_schema.UPGRADE) to an older ledger, or say who can."""
    try:
        with conn.transaction():
            own_schema.upgrade(conn, schema)
    except psycopg.errors.InsufficientPrivilege as exc:
        with autocommit(conn):
            owner = conn.execute(LEDGER_OWNER, {"schema": schema}).fetchone()
        raise ErpPipelinesError(
            f"The rollup ledger {ledger} was created by an older version and lacks its column aggregate_hash; "
            f"this role may not add it ({exc.diag.message_primary}). Nothing was written.",
            where=f"table {ledger} (owner: {owner[0] if owner else 'unknown'})",
            fix=f"As its owner, run `ALTER TABLE {ledger} ADD COLUMN aggregate_hash numeric` once (or materialize "
            "`pipeline_state` as that role); days recorded before keep an empty aggregate_hash, and retention "
            "recomputes them (docs/own_schema.md).",
        ) from None
    except psycopg.errors.LockNotAvailable:
        raise ErpPipelinesError(
            f"The rollup ledger {ledger} was created by an older version and lacks its column aggregate_hash; "
            "adding it waited longer than lock_timeout for another run of ours that holds the table. Nothing "
            "was written.",
            where=f"table {ledger}",
            fix="Run again once the other run (a rollup or retention) has finished; the column is added once.",
        ) from None


def read_ledger(
    conn: psycopg.Connection, rollup: str, days: Sequence[date], schema: str | None = None
) -> dict[date, LedgerEntry]:
    rows = conn.execute(_q(LEDGER_READ, schema), {"rollup": rollup, "days": list(days)}).fetchall()
    return {
        day: LedgerEntry(Fingerprint(int(n), Decimal(h)), None if a is None else Decimal(a)) for day, n, h, a in rows
    }


def write_ledger(
    conn: psycopg.Connection, rollup: str, day: date, fingerprint: Fingerprint,
    aggregate_hash: Decimal | None = None, schema: str | None = None,
) -> None:
    conn.execute(
        _q(LEDGER_WRITE, schema),
        {"rollup": rollup, "day": day, "raw_rows": fingerprint.raw_rows, "raw_hash": fingerprint.raw_hash,
         "aggregate_hash": aggregate_hash},
    )


def forget_ledger_before(conn: psycopg.Connection, rollup: str, cutoff_day: date, schema: str | None = None) -> int:
    return conn.execute(_q(LEDGER_DELETE_BEFORE, schema), {"rollup": rollup, "cutoff_day": cutoff_day}).rowcount


def read_pruned(
    conn: psycopg.Connection, raw_table: str, days: Sequence[date], schema: str | None = None
) -> dict[date, int]:
    rows = conn.execute(_q(PRUNED_READ, schema), {"raw_table": raw_table, "days": list(days)}).fetchall()
    return {day: int(n) for day, n in rows}


def record_pruned(
    conn: psycopg.Connection, raw_table: str, day: date, rollup: str, rows_deleted: int, raw_hash: Decimal,
    schema: str | None = None,
) -> None:
    conn.execute(
        _q(PRUNED_WRITE, schema),
        {"raw_table": raw_table, "day": day, "rollup": rollup, "rows_deleted": rows_deleted, "raw_hash": raw_hash},
    )


def clear_marks(conn: psycopg.Connection, raw_table: str, days: Sequence[date], schema: str | None = None) -> int:
    """Delete the (raw_table, day) marks this transaction's snapshot sees (later commits survive)."""
    return conn.execute(_q(CLEAR_MARKS, schema), {"raw_table": raw_table, "days": list(days)}).rowcount


def mark_day(conn: psycopg.Connection, raw_table: str, day: date, schema: str | None = None) -> None:
    """Ask for a refresh of the day (the late-data sensor reads the marks)."""
    conn.execute(_q(MARK_DAY, schema), {"raw_table": raw_table, "day": day})


def mark_day_once(conn: psycopg.Connection, raw_table: str, day: date, schema: str | None = None) -> None:
    """Ask for a refresh of the day unless a mark already asks (retention, every run: no growing log)."""
    conn.execute(_q(MARK_DAY_ONCE, schema), {"raw_table": raw_table, "day": day})


def fingerprint(conn: psycopg.Connection, statement: sql.Composed, day_start: object, day_end: object) -> Fingerprint:
    n, h = conn.execute(statement, {"day_start": day_start, "day_end": day_end}).fetchone()
    return Fingerprint(int(n), Decimal(h))
