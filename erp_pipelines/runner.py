"""`make run`: the demo ERP end to end through Dagster on the persistent instance, then a summary.

First time: load the seed's drifted state and 30 days of demo data. Every time: run `schema_sync_job`, a
single-run backfill of the rollups over the data's days, retention, and report. Runs go through the
instance under DAGSTER_HOME (dagster-postgres), so they are all visible in the UI afterwards (`make dev`).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg

from erp_pipelines.demo.state import load_drifted_state

Summary = list[tuple[str, str]]


def _check_lines(result: dg.ExecuteInProcessResult) -> list[str]:
    lines = []
    for ev in result.get_asset_check_evaluations():
        status = "passed" if ev.passed else f"FAILED ({ev.severity.value})"
        partition = f" [{ev.partition}]" if getattr(ev, "partition", None) else ""
        lines.append(f"{ev.asset_key.to_user_string()}.{ev.check_name}{partition}: {status}")
    return lines


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _materialized(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for mat in result.get_asset_materialization_events():
        m = mat.event_specific_data.materialization
        out.setdefault(m.asset_key.to_user_string(), {}).update({k: v.value for k, v in m.metadata.items()})
    return out


def run_all(events: int = 1_000_000, days: int = 30) -> int:
    from erp_pipelines.definitions import defs

    started = time.monotonic()
    url = os.environ["ERP_DATABASE_URL"]
    instance = dg.DagsterInstance.get()
    summary: Summary = []
    with psycopg.connect(url, autocommit=True) as conn:
        tables_before = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()[0]
        if load_drifted_state(conn):
            print("Loaded the seed's drifted production state (part of the schema, 20 users, legacy rows).")
            tables_before = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
        generated = _maybe_generate(conn, events, days)
    if generated:
        summary.append(("demo data generated", ", ".join(f"{k} {v:,}" for k, v in generated.items())))

    print("Running schema_sync_job through Dagster ...")
    sync = defs.get_job_def("schema_sync_job").execute_in_process(instance=instance, run_config=QUIET, raise_on_error=False)
    if not sync.success:
        print("schema_sync_job failed; see the run in the UI (make dev).")
        return 1
    mats = _materialized(sync)
    schema_md = mats.get("erp_schema", {})
    history = mats.get("prisma_migration_history", {})
    with psycopg.connect(url, autocommit=True) as conn:
        tables_after = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
        users = conn.execute("SELECT count(*) FROM users").fetchone()[0]
        hist_rows = conn.execute(
            "SELECT count(*) FILTER (WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL), "
            "count(*) FILTER (WHERE rolled_back_at IS NOT NULL) FROM _prisma_migrations"
        ).fetchone()
    summary += [
        ("tables before / after", f"{tables_before} / {tables_after}"),
        ("schema statements run", str(schema_md.get("statements", 0))),
        ("columns / constraints / indexes added",
         f"{schema_md.get('columns_added', 0)} / {schema_md.get('constraints_added', 0)} / "
         f"{schema_md.get('indexes_added', 0)}"),
        ("drift reported (not changed)", str(schema_md.get("drift_items", 0))),
        ("users preserved", str(users)),
        ("migration history", f"{hist_rows[0]} applied, {hist_rows[1]} rolled back; "
                              f"newly baselined {len(history.get('baselined', []) or [])}, "
                              f"applied {len(history.get('applied', []) or [])}"),
    ]
    checks = _check_lines(sync)
    checks += _run_rollups(defs, instance, days, summary)
    summary.append(("checks", f"{sum('passed' in c for c in checks)} passed, "
                              f"{sum('FAILED' in c for c in checks)} failed"))
    print()
    print("Summary")
    print("-------")
    width = max(len(k) for k, _ in summary)
    for key, value in summary:
        print(f"  {key.ljust(width)}  {value}")
    for line in checks:
        if "FAILED" in line:
            print(f"  check {line}")
    print(f"  {'time taken'.ljust(width)}  {time.monotonic() - started:.1f} s")
    print("\nNext: `make dev`, then open http://127.0.0.1:3000 to see these runs, the asset graph and the checks.")
    return 0


def _maybe_generate(conn: psycopg.Connection, events: int, days: int) -> dict[str, int] | None:
    try:
        from erp_pipelines.demo.generate import demo_data_present, generate_demo_data
    except ImportError:
        return None
    if demo_data_present(conn):
        return None
    print(f"Generating {days} days of demo data ({events:,} usage events) ...")
    return generate_demo_data(conn, days=days, events=events, progress=lambda s: print("  " + s, flush=True))


def _run_rollups(defs: dg.Definitions, instance: dg.DagsterInstance, days: int, summary: Summary) -> list[str]:
    """A single-run backfill of both rollups over the demo's days, then retention (when defined)."""
    try:
        job = defs.get_job_def("rollup_backfill_job")
    except Exception:
        return []
    end = datetime.now(UTC).date() - timedelta(days=1)
    start = end - timedelta(days=days - 1)
    print(f"Backfilling the rollups {start} .. {end} as one run ...")
    result = job.execute_in_process(
        instance=instance,
        run_config=QUIET,
        tags={"dagster/asset_partition_range_start": start.isoformat(),
              "dagster/asset_partition_range_end": end.isoformat()},
        raise_on_error=False,
    )
    mats = _materialized(result)
    summary.append(("partitions materialized", f"{(end - start).days + 1} days x {len(mats)} rollups "
                                               f"({'ok' if result.success else 'FAILED'})"))
    for key, md in mats.items():
        written = md.get("rows_written", md.get("dagster/row_count"))
        summary.append((f"{key} rows written", str(written)))
    return _check_lines(result)


