"""The `raw_times_are_utc` check every rollup runs: could a writer be storing local time into the raw table?

The raw timestamps are `timestamp without time zone` filled by `DEFAULT now()`, which stores the writing
session's LOCAL time. With an ERP session west of UTC, the 02:00 UTC nightly would roll up days that are
not complete yet and nothing would say so; east of UTC, rows land in the future. So the check fails (ERROR)
when the TimeZone a session of this database gets is not UTC, when any database or role setting overrides
it with another zone, or when raw rows are stamped later than the UTC now.

Cost: it runs in every rollup step, so it reads what it can without a query. The TimeZone a session gets
from the server, database and role settings is what the server reported when we connected
(ParameterStatus); only when our own connection options may have set it (libpq `options`, PGOPTIONS,
PGTZ: tests and odd setups) is `pg_settings` asked where it came from, since a zone we set ourselves says
nothing about the app's sessions. The overrides and the future rows are one statement.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import dagster as dg
import psycopg
from psycopg import sql

from erp_pipelines.dbwork import autocommit
from erp_pipelines.rollups.spec import RollupSpec

TIME_ZONE_CHECK = "raw_times_are_utc"

# 'UTC' under its other names; anything else stores local time into `timestamp without time zone`.
UTC_NAMES = frozenset(
    n.lower()
    for n in ("UTC", "Etc/UTC", "UCT", "Etc/UCT", "GMT", "Etc/GMT", "GMT0", "Etc/GMT0", "GMT+0", "GMT-0",
              "Etc/GMT+0", "Etc/GMT-0", "Greenwich", "Etc/Greenwich", "Universal", "Etc/Universal", "Zulu",
              "Etc/Zulu")
)
# The raw rows stamped later than the UTC now (5 minutes of clock skew allowed: local time east of UTC), the
# rows out of range (past the year 9999, before year 1, +/-infinity: in no day, never aggregated nor pruned,
# and no Python datetime can hold them; the sensors read such days as text and leave them alone), and
# every per-database and per-role TimeZone setting of this database (ALTER DATABASE/ROLE ... SET timezone)
# as [role, database, zone] rows.
FUTURE_ROWS_AND_OVERRIDES = """
SELECT (SELECT count(*) FROM {raw_table} WHERE {ts} > (now() AT TIME ZONE 'UTC') + interval '5 minutes'),
       (SELECT count(*) FROM {raw_table} WHERE {ts} > '9999-12-31 23:59:59.999999' OR {ts} < '0001-01-01'),
       ARRAY(
           SELECT ARRAY[CASE WHEN s.setrole = 0 THEN '(every role)' ELSE s.setrole::regrole::text END,
                        CASE WHEN s.setdatabase = 0 THEN '(every database)' ELSE current_database()::text END,
                        split_part(cfg, '=', 2)]
           FROM pg_db_role_setting AS s
           CROSS JOIN LATERAL unnest(s.setconfig) AS cfg
           WHERE lower(split_part(cfg, '=', 1)) = 'timezone'
             AND s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
       )
"""
# The same future rows alone, for a role that may not read pg_db_role_setting (hardened servers).
FUTURE_ROWS = """
SELECT (SELECT count(*) FROM {raw_table} WHERE {ts} > (now() AT TIME ZONE 'UTC') + interval '5 minutes'),
       (SELECT count(*) FROM {raw_table} WHERE {ts} > '9999-12-31 23:59:59.999999' OR {ts} < '0001-01-01')
"""
# Where the session's TimeZone came from ('client': our own connection options set it).
SESSION_TIMEZONE = "SELECT setting, source FROM pg_settings WHERE name = 'TimeZone'"


@dataclass(frozen=True)
class TimeZoneFindings:
    session_timezone: str  # '' when our own connection options set it (not judged)
    overrides: list[tuple[str, str, str]]
    future_rows: int
    out_of_range_rows: int = 0

    @property
    def problems(self) -> list[str]:
        found = []
        if self.session_timezone and self.session_timezone.lower() not in UTC_NAMES:
            found.append(f"the database's TimeZone setting is {self.session_timezone!r}")
        found += [
            f"role {role} on {database} has TimeZone {tz!r}"
            for role, database, tz in self.overrides
            if tz.strip().strip("'\"").lower() not in UTC_NAMES
        ]
        if self.future_rows:
            found.append(f"{self.future_rows} raw row(s) are stamped later than the UTC now")
        if self.out_of_range_rows:
            found.append(
                f"{self.out_of_range_rows} raw row(s) are stamped out of range (after the year 9999, before year "
                "1, or +/-infinity): they belong to no day, are in no aggregate and are never pruned"
            )
        return found


def _our_options_may_set_it(conn: psycopg.Connection) -> bool:
    options = f"{conn.info.get_parameters().get('options', '')} {os.environ.get('PGOPTIONS', '')}".lower()
    return "timezone" in options or "PGTZ" in os.environ


def session_time_zone(conn: psycopg.Connection) -> str:
    """The TimeZone a session of this database and role gets ('' when our own options set ours). Called by
    read_findings in autocommit, so the rare query is one statement of its own."""
    if not _our_options_may_set_it(conn):
        return conn.info.parameter_status("TimeZone") or ""
    setting, source = conn.execute(SESSION_TIMEZONE).fetchone()
    return "" if source in ("client", "session") else setting


def read_findings(conn: psycopg.Connection, spec: RollupSpec) -> TimeZoneFindings:
    """The session TimeZone, every database/role override, and raw rows in the future of UTC now."""
    names = {"raw_table": sql.Identifier(spec.raw_table), "ts": sql.Identifier(spec.ts_column)}
    with autocommit(conn):  # between transactions; a refused read affects nothing else
        try:
            future, out_of_range, overrides = conn.execute(
                sql.SQL(FUTURE_ROWS_AND_OVERRIDES).format(**names)).fetchone()
        except psycopg.errors.InsufficientPrivilege:
            (future, out_of_range), overrides = conn.execute(sql.SQL(FUTURE_ROWS).format(**names)).fetchone(), []
        return TimeZoneFindings(session_time_zone(conn), [tuple(o) for o in overrides], int(future),
                                int(out_of_range))


def time_zone_result(spec: RollupSpec, findings: TimeZoneFindings) -> dg.AssetCheckResult:
    """ERROR when a writer may store local time into the raw table's `timestamp without time zone`."""
    problems = findings.problems
    return dg.AssetCheckResult(
        check_name=TIME_ZONE_CHECK,
        asset_key=spec.asset_key,
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"{spec.raw_table}.{spec.ts_column} is written in UTC: TimeZone is UTC for the database and every "
            "role, and no row lies in the future."
            if not problems
            else "Raw timestamps may be local time, so days would be cut at the wrong hour: "
            + "; ".join(problems)
            + ". The column is `timestamp without time zone` filled by DEFAULT now(), which stores the writing "
            "session's local time. Fix: `ALTER DATABASE <db> SET timezone TO 'UTC'` (and `ALTER ROLE <role> "
            "SET timezone TO 'UTC'` for a role listed), then reconnect the app."
        ),
        metadata={
            "timezone": dg.MetadataValue.text(findings.session_timezone or "(set by this connection's options)"),
            "timezone_overrides": dg.MetadataValue.json([list(o) for o in findings.overrides]),
            "future_rows": dg.MetadataValue.int(findings.future_rows),
            "out_of_range_rows": dg.MetadataValue.int(findings.out_of_range_rows),
        },
    )
