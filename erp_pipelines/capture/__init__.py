"""Change capture: triggers on the ERP's raw tables that log which (raw table, UTC day) changed.

Why: the late-data sensor must see every change to a day already rolled up (INSERT, UPDATE, DELETE, commits
in any order), which id ranges and row counts cannot. The design is TimescaleDB's continuous-aggregate
invalidation log: the write path only appends cheap marks, and the reader (the rollup) consumes them in its
own transaction. `triggers` installs and removes the triggers, `log` reads the marks (docs/change_capture.md).
"""
