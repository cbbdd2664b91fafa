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
from erp_pipelines.capture.triggers import OUR_FUNCTIONS, Operation, capture_name

# Our triggers on one raw table and whether each fires for normal sessions ('O') or always ('A'); which of
# our capture functions exist is triggers.OUR_FUNCTIONS, the query pipeline_state's uninstall reads.
TRIGGER_STATES = """
SELECT t.tgname, t.tgenabled IN ('O', 'A')
FROM pg_trigger t
WHERE t.tgrelid = to_regclass(%(table)s) AND NOT t.tgisinternal AND t.tgname = ANY(%(names)s)
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
    states = dict(conn.execute(TRIGGER_STATES, {"table": table, "names": names}).fetchall())
    functions = {r[0] for r in conn.execute(OUR_FUNCTIONS, {"schema": own_schema.own_schema_name()})} & set(names)
    if not states and not functions:
        return CaptureState(raw_table, installed=False)
    return CaptureState(
        raw_table,
        disabled=tuple(n for n in names if states.get(n) is False),
        missing=tuple(n for n in names if n not in states),
    )
