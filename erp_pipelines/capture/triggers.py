"""The capture triggers' DDL, and installing/removing them idempotently in the caller's transaction.

Per raw table and operation one statement-level AFTER trigger `erp_pipelines_capture_<table>_<op>` whose
function of the same name lives in our own schema. It reads the statement's transition table(s) and appends
one (raw_table, day) mark per distinct UTC day touched to `<own schema>.invalidations`:

- INSERT: the new rows' days; DELETE: the old rows' days; UPDATE: both, so a row moved to another day marks
  the day it left and the day it joined.
- Rows whose timestamp is NULL belong to no partition and are not marked (the rollups report them).
- A transaction of ours that deletes rows an aggregate provably holds (retention) sets the transaction-local
  setting `erp_pipelines.capture` to `off`: its deletes mark nothing (a pruned day is never re-aggregated).
- Append only, no unique constraint and no read of the log: concurrent app writers never wait on each other
  here, and a mark cannot be lost to a concurrent rollup clearing "the same" mark (a rollup deletes only the
  marks its snapshot sees, so a mark committed later survives).
- SECURITY DEFINER with a fixed search_path (`pg_catalog, pg_temp`) and every name schema-qualified: the
  function runs as its owner (the pipelines role), so the app role fires it without any grant on our
  schema; EXECUTE is revoked from PUBLIC (a trigger's function is not checked for EXECUTE when it fires).
- Static SQL in PL/pgSQL, so the INSERT's plan is prepared once per app session; one statement per app
  statement (not per row) keeps the write path's cost small (bench/trigger_overhead.py).

Idempotent: a function is (re)created only when its body differs, a trigger only when missing, and a trigger
found disabled (`ALTER TABLE ... DISABLE TRIGGER`, or ENABLE REPLICA TRIGGER: it would never fire for the
app) is enabled again (`triggers_enabled`), so a second install changes nothing and takes no lock on the ERP's tables. CREATE TRIGGER takes a SHARE ROW EXCLUSIVE
lock on the raw table (it waits for in-flight app writes and blocks new ones while it waits); the caller's
`lock_timeout` bounds that wait.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

import psycopg
from psycopg import sql

from erp_pipelines import own_schema
from erp_pipelines.capture.targets import CaptureTarget
from erp_pipelines.errors import ErpPipelinesError

NAME_PREFIX = "erp_pipelines_capture_"
MAX_IDENTIFIER = 63


class Operation(StrEnum):
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"


# The UTC day of a timestamp column, by its type (the ERP's convention is `timestamp` holding UTC).
DAY_OF = {
    "timestamp without time zone": "({col})::date",
    "timestamp with time zone": "({col} AT TIME ZONE 'UTC')::date",
    "date": "{col}",
}

COLUMN_TYPE = """
SELECT a.atttypid::regtype::text
FROM pg_attribute a
WHERE a.attrelid = to_regclass(%(table)s) AND a.attname = %(column)s AND a.attnum > 0 AND NOT a.attisdropped
"""
FUNCTION_STATE = """
SELECT p.prosrc, p.prosecdef
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = %(schema)s AND p.proname = %(name)s AND p.pronargs = 0
"""
# tgenabled: 'O' fires in normal sessions, 'A' always; 'D' (DISABLE TRIGGER) and 'R' (ENABLE REPLICA
# TRIGGER) never fire for the app's writes, so install() enables them again.
TRIGGER_EXISTS = """
SELECT tgenabled IN ('O', 'A') FROM pg_trigger
WHERE tgrelid = to_regclass(%(table)s) AND tgname = %(name)s AND NOT tgisinternal
"""
# Our triggers wherever they are: named with our prefix and calling a function in our schema.
OUR_TRIGGERS = """
SELECT tn.nspname, c.relname, t.tgname, p.proname
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace tn ON tn.oid = c.relnamespace
JOIN pg_proc p ON p.oid = t.tgfoid
JOIN pg_namespace pn ON pn.oid = p.pronamespace
WHERE NOT t.tgisinternal AND t.tgname LIKE 'erp\\_pipelines\\_capture\\_%%' AND pn.nspname = %(schema)s
ORDER BY 1, 2, 3
"""
OUR_FUNCTIONS = """
SELECT p.proname
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = %(schema)s AND p.proname LIKE 'erp\\_pipelines\\_capture\\_%%' AND p.pronargs = 0
ORDER BY 1
"""

MARK_ROWS = sql.SQL(
    "INSERT INTO {log} (raw_table, day) "
    "SELECT DISTINCT {table}, d FROM (SELECT {day} AS d FROM {rows}) s WHERE d IS NOT NULL"
)
MARK_UPDATED_ROWS = sql.SQL(
    "INSERT INTO {log} (raw_table, day) "
    "SELECT {table}, d FROM (SELECT {day} AS d FROM old_rows UNION SELECT {day} FROM new_rows) s "
    "WHERE d IS NOT NULL"
)
# Our own writers (retention's deletes of rows an aggregate provably holds) switch marking off for their
# transaction with `SELECT set_config('erp_pipelines.capture', 'off', true)`.
SKIP_SETTING = "erp_pipelines.capture"
FUNCTION_BODY = (
    "\nBEGIN\n    IF current_setting('" + SKIP_SETTING + "', true) = 'off' THEN\n        RETURN NULL;\n    END IF;\n"
    "    {statement};\n    RETURN NULL;\nEND\n"
)
CREATE_FUNCTION = sql.SQL(
    "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql "
    "SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS {body}"
)
REVOKE_FUNCTION = sql.SQL("REVOKE ALL ON FUNCTION {function}() FROM PUBLIC")
CREATE_TRIGGER = sql.SQL(
    "CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {transition} "
    "FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
)
TRANSITION = {
    Operation.INSERT: sql.SQL("NEW TABLE AS new_rows"),
    Operation.UPDATE: sql.SQL("OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    Operation.DELETE: sql.SQL("OLD TABLE AS old_rows"),
}
ENABLE_TRIGGER = sql.SQL("ALTER TABLE {table} ENABLE TRIGGER {name}")
DROP_TRIGGER = sql.SQL("DROP TRIGGER IF EXISTS {name} ON {table}")
DROP_FUNCTION = sql.SQL("DROP FUNCTION IF EXISTS {function}()")


def capture_name(raw_table: str, op: Operation) -> str:
    """`erp_pipelines_capture_<table>_<op>`, shortened with a hash when past PostgreSQL's 63 bytes."""
    name = f"{NAME_PREFIX}{raw_table}_{op}"
    if len(name.encode()) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha256(raw_table.encode()).hexdigest()[:8]
    room = MAX_IDENTIFIER - len(NAME_PREFIX) - len(op) - len(digest) - 2
    return f"{NAME_PREFIX}{raw_table.encode()[:room].decode(errors='ignore')}_{digest}_{op}"


@dataclass
class CaptureReport:
    """What an install or uninstall found and did (the asset's metadata)."""

    functions_written: list[str] = field(default_factory=list)
    triggers_created: list[str] = field(default_factory=list)
    triggers_present: list[str] = field(default_factory=list)
    triggers_enabled: list[str] = field(default_factory=list)  # found disabled (by hand), enabled again
    triggers_dropped: list[str] = field(default_factory=list)
    tables_missing: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.functions_written or self.triggers_created or self.triggers_enabled
                    or self.triggers_dropped)


def day_expression(column_type: str, where: str) -> str:
    """The SQL template of a column's UTC day ({col} stands for the quoted column)."""
    try:
        return DAY_OF[column_type]
    except KeyError:
        raise ErpPipelinesError(
            f"The timestamp column has type {column_type}, which has no UTC day.",
            where=where,
            fix="Point the rollup spec's ts_column at a timestamp, timestamptz or date column.",
        ) from None


def function_body(conn: psycopg.Connection, schema: str, target: CaptureTarget, column_type: str,
                  op: Operation) -> str:
    """The PL/pgSQL body of one capture function, as PostgreSQL will store it (prosrc)."""
    template = day_expression(column_type, f"column {target.raw_table}.{target.ts_column}")
    day = sql.SQL(template).format(col=sql.Identifier(target.ts_column))
    log = sql.Identifier(schema, "invalidations")
    table = sql.Literal(target.raw_table)
    if op is Operation.UPDATE:
        statement = MARK_UPDATED_ROWS.format(log=log, table=table, day=day)
    else:
        rows = sql.Identifier("new_rows" if op is Operation.INSERT else "old_rows")
        statement = MARK_ROWS.format(log=log, table=table, day=day, rows=rows)
    return FUNCTION_BODY.format(statement=statement.as_string(conn))


def install(conn: psycopg.Connection, erp_schema: str, targets: Iterable[CaptureTarget],
            schema: str | None = None) -> CaptureReport:
    """Our schema, its tables, and the capture functions and triggers of every target, if missing."""
    schema = schema or own_schema.own_schema_name()
    own_schema.install(conn, erp_schema, schema)
    report = CaptureReport()
    for target in targets:
        qualified = sql.Identifier(erp_schema, target.raw_table).as_string(conn)
        row = conn.execute(COLUMN_TYPE, {"table": qualified, "column": target.ts_column}).fetchone()
        if row is None:
            report.tables_missing.append(target.raw_table)
            continue
        for op in Operation:
            name = capture_name(target.raw_table, op)
            function = sql.Identifier(schema, name)
            body = function_body(conn, schema, target, row[0], op)
            state = conn.execute(FUNCTION_STATE, {"schema": schema, "name": name}).fetchone()
            if state != (body, True):
                conn.execute(CREATE_FUNCTION.format(function=function, body=sql.Literal(body)))
                conn.execute(REVOKE_FUNCTION.format(function=function))
                report.functions_written.append(name)
            exists = conn.execute(TRIGGER_EXISTS, {"table": qualified, "name": name}).fetchone()
            if exists is not None:
                if not exists[0]:  # disabled by hand (ALTER TABLE ... DISABLE TRIGGER): capture was off
                    conn.execute(ENABLE_TRIGGER.format(name=sql.Identifier(name),
                                                       table=sql.Identifier(erp_schema, target.raw_table)))
                    report.triggers_enabled.append(f"{target.raw_table}.{name}")
                report.triggers_present.append(f"{target.raw_table}.{name}")
                continue
            conn.execute(
                CREATE_TRIGGER.format(
                    name=sql.Identifier(name),
                    event=sql.SQL(op.upper()),
                    table=sql.Identifier(erp_schema, target.raw_table),
                    transition=TRANSITION[op],
                    function=function,
                )
            )
            report.triggers_created.append(f"{target.raw_table}.{name}")
    return report


def installed(conn: psycopg.Connection, schema: str | None = None) -> list[tuple[str, str, str]]:
    """(table schema, table, trigger) of every capture trigger calling a function in our schema."""
    schema = schema or own_schema.own_schema_name()
    return [(s, t, name) for s, t, name, _ in conn.execute(OUR_TRIGGERS, {"schema": schema}).fetchall()]


def uninstall(conn: psycopg.Connection, schema: str | None = None) -> CaptureReport:
    """Drop every capture trigger and function of ours (the log and its marks stay)."""
    schema = schema or own_schema.own_schema_name()
    report = CaptureReport()
    for table_schema, table, name in installed(conn, schema):
        conn.execute(DROP_TRIGGER.format(name=sql.Identifier(name), table=sql.Identifier(table_schema, table)))
        report.triggers_dropped.append(f"{table}.{name}")
    for (name,) in conn.execute(OUR_FUNCTIONS, {"schema": schema}).fetchall():
        conn.execute(DROP_FUNCTION.format(function=sql.Identifier(schema, name)))
    return report
