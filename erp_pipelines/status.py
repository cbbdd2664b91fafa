"""`erp-pipelines status`: what an operator wants to know about one ERP database, on one screen, read-only.

Five named sections, each a few lines: Schema (what the sync would still do and the drift it reports: the
same dry run as `erp-pipelines plan`), Migration history (`_prisma_migrations` against the folder), Rollup
ledger (days each aggregate holds a fingerprint for), Pruned days (what retention deleted), Dagster instance
(whether DAGSTER_HOME's instance serves this database; erp_pipelines/instance_binding.py). A section that
cannot be read (no privilege, our schema not created yet) says so in its own line; the others still show.
Reading is all it does: the sync's replay runs in a transaction that is rolled back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC

import psycopg
from psycopg import sql

from erp_pipelines import settings
from erp_pipelines.errors import ErpPipelinesError, redact

MAX_ITEMS = 5  # names listed per section before "... and N more"

LEDGER = """SELECT rollup, count(*), min(day), max(day) FROM {schema}.rollup_ledger GROUP BY rollup ORDER BY rollup"""
PRUNED = """SELECT raw_table, count(*), min(day), max(day), sum(rows_deleted)
FROM {schema}.pruned_days GROUP BY raw_table ORDER BY raw_table"""
OWN_SCHEMA_EXISTS = "SELECT to_regnamespace(%s) IS NOT NULL"


@dataclass
class Section:
    title: str
    lines: list[str] = field(default_factory=list)


@dataclass
class Status:
    database: str
    sections: list[Section]

    def render(self) -> str:
        out = [f"erp-pipelines status: {self.database}"]
        for section in self.sections:
            out += ["", section.title, *(f"  {line}" for line in section.lines or ["(nothing)"])]
        return "\n".join(out)


def listed(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_ITEMS])
    return shown + (f" ... and {len(names) - MAX_ITEMS} more" if len(names) > MAX_ITEMS else "")


def _guarded(title: str, read: Callable[[], list[str]]) -> Section:
    """A section, or one line saying why it could not be read."""
    try:
        return Section(title, read())
    except ErpPipelinesError as exc:
        return Section(title, [f"unavailable: {exc.what}"])
    except psycopg.errors.InsufficientPrivilege as exc:  # e.g. the rollup role, which holds only its grants
        return Section(title, [
            f"unavailable: {redact(str(exc)).strip().splitlines()[0]}. This role may not read it: run "
            "`erp-pipelines status` with ERP_DATABASE_URL set to the schema owner (the role the schema sync "
            "runs as), which can."
        ])
    except psycopg.Error as exc:
        return Section(title, [f"unavailable: {redact(str(exc)).strip().splitlines()[0]}"])


def schema_lines(db, folder, baseline: str) -> list[str]:
    from erp_pipelines.prisma.history import applied_names, read_history
    from erp_pipelines.prisma.sync import sync_schema
    from erp_pipelines.prisma.target import target

    with db.connect("status", autocommit=True) as conn:
        done = applied_names(read_history(conn, db.db_schema))
    wanted = target(folder, baseline, None, done)
    plan = sync_schema(db, wanted.baseline, dry_run=True, applied_later=wanted.applied_later,
                       replayed_before=wanted.before, log=lambda _: None).plan
    pending = plan.summary()["statements"]
    lines = [f"statements the sync would run: {pending}" + (" (see `erp-pipelines plan`)" if pending else "")]
    lines.append(f"drift (reported, never changed): {len(plan.drift)}")
    lines += [f"- {d.kind}: {d.object}" for d in plan.drift[:MAX_ITEMS]]
    if len(plan.drift) > MAX_ITEMS:
        lines.append(f"- ... and {len(plan.drift) - MAX_ITEMS} more (`erp-pipelines plan` lists them all)")
    return lines


def history_lines(db, folder) -> list[str]:
    from erp_pipelines.prisma.history import read_history

    with db.connect("status", autocommit=True) as conn:
        rows = read_history(conn, db.db_schema)
    if not rows:
        return [f"_prisma_migrations: missing or empty; the folder has {len(folder.names())} migrations"]
    applied = {r.name for r in rows if r.applied}
    failed = sorted({r.name for r in rows if r.unfinished} - applied)
    pending = [name for name in folder.names() if name not in applied]
    unknown = sorted(applied - set(folder.names()))
    lines = [f"applied: {len(applied)} of the folder's {len(folder.names())}; rolled back attempts: "
             f"{sum(r.rolled_back for r in rows)}"]
    latest = max((r for r in rows if r.applied), key=lambda r: r.finished_at, default=None)
    if latest is not None:
        lines.append(f"latest applied: {latest.name} at {latest.finished_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
    lines.append(f"failed, unresolved (blocks prisma migrate deploy): {listed(failed) if failed else 'none'}")
    lines.append(f"not applied yet: {listed(pending) if pending else 'none'}")
    if unknown:
        lines.append(f"applied but not in the folder: {listed(unknown)}")
    return lines


def _own_schema_rows(db, query: str) -> list[tuple] | None:
    schema = settings.own_schema()
    with db.connect("status", autocommit=True) as conn:
        if not conn.execute(OWN_SCHEMA_EXISTS, (sql.Identifier(schema).as_string(conn),)).fetchone()[0]:
            return None
        return conn.execute(sql.SQL(query).format(schema=sql.Identifier(schema))).fetchall()


def ledger_lines(db) -> list[str]:
    rows = _own_schema_rows(db, LEDGER)
    if rows is None:
        return [f"schema {settings.own_schema()} not created yet (the pipeline_state asset creates it)"]
    return [f"{rollup}: {days} days, {first} .. {last}" for rollup, days, first, last in rows] or [
        "no day rolled up yet"]


def pruned_lines(db) -> list[str]:
    rows = _own_schema_rows(db, PRUNED)
    if rows is None:
        return [f"schema {settings.own_schema()} not created yet (the pipeline_state asset creates it)"]
    return [f"{table}: {days} days, {first} .. {last}, {rows_:,} rows deleted"
            for table, days, first, last, rows_ in rows] or ["no day pruned yet"]


def instance_lines(db) -> list[str]:
    """Which database the Dagster instance of DAGSTER_HOME serves (erp_pipelines/instance_binding.py)."""
    import dagster as dg

    from erp_pipelines import instance_binding

    home = settings.dagster_home()
    if home is None:
        return ["DAGSTER_HOME is not set (`eval \"$(erp-pipelines env)\"` sets it)"]
    identity = db.identity()
    try:
        with dg.DagsterInstance.get() as instance:
            bound = instance_binding.recorded(instance)
    except Exception as exc:  # noqa: BLE001 - Dagster's storage unreadable: say so, show the other sections
        return [f"unavailable ({home}): {redact(str(exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"]
    if bound is None:
        return [f"{home}: not bound yet (its first run records this database)"]
    if bound.same_database(identity):
        return [f"{home}: serves this database"]
    return [f"{home}: serves ANOTHER database, {bound.describe()}: its runs here are refused"]


def read_status(db, migrations: str | None = None, baseline: str | None = None) -> Status:
    """Every section for the ERP database `db` (an ErpDatabase); reads only."""
    from erp_pipelines.prisma.migrations import read_migrations_folder
    from erp_pipelines.prisma.target import DEFAULT_BASELINE
    from erp_pipelines.resources import DEMO_MIGRATIONS_DIR

    # the setting's value itself: the resource's dg.EnvVar can only be read inside a Dagster run
    folder = read_migrations_folder(migrations or settings.migrations_dir() or DEMO_MIGRATIONS_DIR)
    return Status(
        database=f"{db.safe_url()} (schema {db.db_schema}; migrations {folder.path})",
        sections=[
            _guarded("Schema", lambda: schema_lines(db, folder, baseline or DEFAULT_BASELINE)),
            _guarded("Migration history", lambda: history_lines(db, folder)),
            _guarded("Rollup ledger", lambda: ledger_lines(db)),
            _guarded("Pruned days", lambda: pruned_lines(db)),
            _guarded("Dagster instance", lambda: instance_lines(db)),
        ],
    )
