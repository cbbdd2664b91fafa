"""Whether a raw table's capture triggers are in place and firing, as every rollup run reads it.

Why a module: `pipeline_state` re-enables a capture trigger disabled by hand (`ALTER TABLE ... DISABLE
TRIGGER`, or `ENABLE REPLICA TRIGGER`, which never fires for the app) and re-creates a dropped one, but it runs
only with the schema sync. Between two syncs change capture could be off for weeks without a word: the
late-data sensor would then see no changed day. So every rollup run reads its raw table's triggers here (one
catalog query, no lock) and its `capture_triggers_enabled` check (WARN) says what is off and what to run.

What counts as off: a trigger of ours present but not firing for the app's sessions (`tgenabled` 'D' or 'R'),
or missing while its function is installed in our schema (the trigger was dropped by hand). No trigger and no
function is capture not installed (opted out with `change_capture: false`, or `pipeline_state` not run yet):
not a failure; the rollups then find changed days by their fingerprints alone (docs/change_capture.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from erp_pipelines import own_schema
from erp_pipelines.capture.triggers import Operation, capture_name

# Our triggers on one raw table, whether each fires for normal sessions ('O') or always ('A'), and which of
# their functions exist in our schema (the same names; triggers.OUR_FUNCTIONS lists all of them for
# pipeline_state's uninstall): one round trip, since every rollup run reads it.
CAPTURE_STATE = """
SELECT ARRAY(SELECT t.tgname FROM pg_trigger t
             WHERE t.tgrelid = to_regclass(%(table)s) AND NOT t.tgisinternal AND t.tgname = ANY(%(names)s)),
       ARRAY(SELECT t.tgname FROM pg_trigger t
             WHERE t.tgrelid = to_regclass(%(table)s) AND NOT t.tgisinternal AND t.tgname = ANY(%(names)s)
               AND t.tgenabled IN ('O', 'A')),
       ARRAY(SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = %(schema)s AND p.proname = ANY(%(names)s) AND p.pronargs = 0)
"""


@dataclass(frozen=True)
class CaptureState:
    """One raw table's capture triggers: the ones that do not fire and the ones missing though installed."""

    raw_table: str
    disabled: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    installed: bool = True  # False: no trigger and no function of ours for this table (capture not installed)

    @property
    def firing(self) -> bool:
        return not self.disabled and not self.missing


def capture_state(conn: psycopg.Connection, erp_schema: str, raw_table: str) -> CaptureState:
    """Read (no lock) the state of `raw_table`'s capture triggers (module docstring)."""
    names = [capture_name(raw_table, op) for op in Operation]
    table = sql.Identifier(erp_schema, raw_table).as_string(conn)
    present, firing, functions = conn.execute(
        CAPTURE_STATE, {"table": table, "names": names, "schema": own_schema.own_schema_name()}
    ).fetchone()
    if not present and not functions:
        return CaptureState(raw_table, installed=False)
    return CaptureState(
        raw_table,
        disabled=tuple(n for n in names if n in present and n not in firing),
        missing=tuple(n for n in names if n not in present),
    )
