"""`make run`: the demo ERP end to end through Dagster on the persistent instance, then a summary.

First time: load the seed's drifted state and 30 days of demo data. Every time: run `schema_sync_job`, a
single-run backfill of the rollups over the data's days, retention, and report. Runs go through the
instance under DAGSTER_HOME (dagster-postgres), so they are all visible in the UI afterwards (`make dev`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg
from psycopg import sql

from erp_pipelines.defs_factory import build_defs
from erp_pipelines.demo.generate import (
    default_end_day,
    demo_data_present,
    generate_demo_data,
    generate_rate_limit_violations,
)
from erp_pipelines.demo.state import load_drifted_state
from erp_pipelines.demo_guard import check_demo_target
from erp_pipelines.instance_binding import check_or_bind
from erp_pipelines.resources import erp_database
from erp_pipelines.rollups.daily_report import is_standing_evaluation
from erp_pipelines.rollups.steps import RAW_ROWS_READ
from erp_pipelines.run_summary import (
    CheckLine,
    check_count,
    failure_lines,
    failure_sections,
    named,
    standing_failures,
    with_standing,
    without_step_prefix,
)
from erp_pipelines.settings import check_dagster_storage, state_dir

__all__ = ["CheckLine", "failure_lines", "run_all"]

Summary = list[tuple[str, str]]
DEMO_TABLES = ("users", "client_usage_events", "client_daily_usage", "system_metric_samples", "system_metric_daily",
               "rate_limit_violations")
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
TABLE_COUNT = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
TABLE_NAMES = "SELECT coalesce(array_agg(tablename::text ORDER BY tablename), '{}') FROM pg_tables WHERE schemaname = 'public'"
USERS = "SELECT CASE WHEN to_regclass('users') IS NULL THEN 0 ELSE (SELECT count(*) FROM users) END"


def _check_lines(result: dg.ExecuteInProcessResult) -> list[CheckLine]:
    return [
        CheckLine(f"{ev.asset_key.to_user_string()}.{ev.check_name}", getattr(ev, "partition", None) or None,
                  ev.passed, ev.severity.value, ev.description or "")
        for ev in result.get_asset_check_evaluations()
        if not is_standing_evaluation(ev)  # repeats the days' own results (rollups/daily_report.py)
    ]


class _Progress:
    """Prints a run's own log lines (the assets' per-day progress) compactly while the run executes.

    The run writes its events to the instance's event log as it goes; a background thread follows them with a
    cursor, so `make run` shows progress without Dagster's console logger and its long prefixes.
    """

    def __init__(self, instance: dg.DagsterInstance, run_id: str) -> None:
        self.instance, self.run_id, self.cursor = instance, run_id, None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._follow, daemon=True)

    def __enter__(self) -> _Progress:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self._print_new()

    def _follow(self) -> None:
        while not self.stop.wait(0.5):
            self._print_new()

    def _print_new(self) -> None:
        try:
            page = self.instance.get_records_for_run(self.run_id, cursor=self.cursor)
        except Exception:  # noqa: BLE001 - progress is best effort; the run's result is what counts
            return
        self.cursor = page.cursor
        for record in page.records:
            entry = record.event_log_entry
            if entry.dagster_event is None and entry.user_message and entry.level >= logging.INFO:
                print(f"  [{entry.step_key}] {without_step_prefix(entry.step_key, entry.user_message)}", flush=True)


def _failures(result: dg.ExecuteInProcessResult) -> list[str]:
    """What failed, in the user's words: a Failure's description, else the error message."""
    out = []
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            data = event.event_specific_data
            text = data.user_failure_data.description if data.user_failure_data else None
            error = data.error
            while not text and error is not None:
                text, error = (error.message.strip() if error.cause is None else None), error.cause
            out.append(f"{event.step_key}: {text}")
    return out


def _materialized(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    """Each asset's FIRST materialization of the run: the run's own (window totals); in a partition-range run
    the per-day materializations that follow carry one day each (rollups/daily_report.py)."""
    out: dict[str, dict] = {}
    for mat in result.get_asset_materialization_events():
        m = mat.event_specific_data.materialization
        out.setdefault(m.asset_key.to_user_string(), {k: v.value for k, v in m.metadata.items()})
    return out


def run_all(events: int = 1_000_000, days: int = 30, demo_into: str | None = None) -> int:
    """The demo end to end; refuses, before any write, a database that is not the embedded demo's unless
    `demo_into` names it (erp_pipelines/demo_guard.py)."""
    warnings.filterwarnings("ignore")  # Dagster's beta/supersession notices; the summary is what matters here
    started = time.monotonic()
    erp_db = erp_database()
    check_dagster_storage()  # before Dagster connects: one clear message, never the password
    with erp_db.connect("demo guard", autocommit=True) as conn:  # reads only
        check_demo_target(conn, state_dir(), erp_db.safe_url(), demo_into)
    defs = build_defs()
    instance = dg.DagsterInstance.get()
    check_or_bind(instance, erp_db.identity())  # an instance serving another database: refused before any write
    summary: Summary = []
    with erp_db.connect("run", autocommit=True) as conn:
        if load_drifted_state(conn):
            print("Loaded the seed's drifted production state (part of the schema, 20 users, legacy rows).")
        generated = _maybe_generate(conn, events, days)
        tables_before = conn.execute(TABLE_COUNT).fetchone()[0]
        names_before = set(conn.execute(TABLE_NAMES).fetchone()[0])
        users_before = conn.execute(USERS).fetchone()[0]
    if generated:
        summary.append(("demo data generated", ", ".join(f"{k} {v:,}" for k, v in generated.items())))

    print("Running schema_sync_job through Dagster ...")
    sync = defs.resolve_job_def("schema_sync_job").execute_in_process(instance=instance, run_config=QUIET, raise_on_error=False)
    if not sync.success:
        print("schema_sync_job failed (nothing was half-applied); see the run in the UI (make dev):")
        for line in _failures(sync):
            print(f"  {line}")
        return 1
    if generated:  # the third rollup's raw table exists only now (the seed's drifted state lacks it)
        with erp_db.connect("run", autocommit=True) as conn:
            _maybe_generate_violations(conn, days, summary)
    mats = _materialized(sync)
    schema_md = mats.get("erp_schema", {})
    history = mats.get("prisma_migration_history", {})
    with erp_db.connect("run", autocommit=True) as conn:
        tables_after = conn.execute(TABLE_COUNT).fetchone()[0]
        added_tables = sorted(set(conn.execute(TABLE_NAMES).fetchone()[0]) - names_before)
        users = conn.execute(USERS).fetchone()[0]
        hist_rows = conn.execute(
            "SELECT count(*) FILTER (WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL), "
            "count(*) FILTER (WHERE rolled_back_at IS NOT NULL) FROM _prisma_migrations"
        ).fetchone()
    summary += [
        ("tables before / after", f"{tables_before} / {tables_after}"
                                  + (f"; added: {named(added_tables)}" if added_tables else "")),
        ("schema statements run", str(schema_md.get("statements", 0))),
        ("columns / constraints / indexes added",
         f"{schema_md.get('columns_added', 0)} / {schema_md.get('constraints_added', 0)} / "
         f"{schema_md.get('indexes_added', 0)}"),
        ("drift reported (not changed)", f"{schema_md.get('drift_items', 0)}"
                                         + (f": {named(schema_md.get('drift') or [])}" if schema_md.get("drift") else "")),
        ("users preserved", f"{users} of {users_before}"),
        ("migration history", f"{hist_rows[0]} applied, {hist_rows[1]} rolled back; "
                              f"newly baselined {len(history.get('baselined', []) or [])}, "
                              f"applied {len(history.get('applied', []) or [])}"),
    ]
    checks = _check_lines(sync)
    rollup_checks, rollups_ok = _run_rollups(defs, instance, days, summary)
    checks += rollup_checks
    with erp_db.connect("run", autocommit=True) as conn:
        counts = {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
                  for t in DEMO_TABLES}
    summary.append(("row counts now", ", ".join(f"{t} {n:,}" for t, n in counts.items())))
    # what stands on the instance (its latest evaluation per check and day), so a no-op run never says "0
    # failed" while an ERROR of an earlier run stands
    checks = with_standing(checks, standing_failures(instance, defs.resolve_asset_graph().asset_check_keys))
    summary.append(("checks", check_count(checks)))
    print()
    print("Summary")
    print("-------")
    width = max(len(k) for k, _ in summary)
    for key, value in summary:
        print(f"  {key.ljust(width)}  {value}")
    for line in failure_sections(checks):
        print(f"    {line}")
    print(f"  {'time taken'.ljust(width)}  {time.monotonic() - started:.1f} s")
    print("\nNext: `make dev`, then open http://127.0.0.1:3000 to see these runs, the asset graph and the checks.")
    return 0 if rollups_ok else 1


def _maybe_generate(conn: psycopg.Connection, events: int, days: int) -> dict[str, int] | None:
    if demo_data_present(conn):
        return None
    print(f"Generating {days} days of demo data ({events:,} usage events) ...")
    return generate_demo_data(conn, days=days, events=events, progress=lambda s: print("  " + s, flush=True))


def _maybe_generate_violations(conn: psycopg.Connection, days: int, summary: Summary) -> None:
    if conn.execute("SELECT EXISTS (SELECT 1 FROM rate_limit_violations)").fetchone()[0]:
        return
    n = generate_rate_limit_violations(conn, default_end_day() - timedelta(days=days - 1), days)
    summary.append(("demo rate-limit violations", f"{n:,} (the declared third rollup's raw rows)"))


def _run_rollups(
    defs: dg.Definitions, instance: dg.DagsterInstance, days: int, summary: Summary
) -> tuple[list[CheckLine], bool]:
    """Materialize the demo days' missing rollup partitions as ONE run (single-run backfill), then retention.

    Partitions already materialized are not re-aggregated (late rows for them are the late-data sensor's
    job under `make dev`), so a second `make run` only runs retention, which finds nothing to delete.
    """
    from erp_pipelines.automation.jobs import ROLLUP_KEYS

    end = datetime.now(UTC).date() - timedelta(days=1)
    wanted = [(end - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]
    done = set.intersection(*(set(instance.get_materialized_partitions(dg.AssetKey(k))) for k in ROLLUP_KEYS))
    missing = [key for key in wanted if key not in done]
    if missing:
        print(f"Backfilling both rollups for {missing[0]} .. {missing[-1]} ({len(missing)} days) as one run, "
              "then retention ...", flush=True)
        run_id = str(uuid.uuid4())
        with _Progress(instance, run_id):
            result = defs.resolve_job_def("nightly_rollup_job").execute_in_process(
                instance=instance,
                run_config=QUIET,
                run_id=run_id,
                tags={"dagster/asset_partition_range_start": missing[0],
                      "dagster/asset_partition_range_end": missing[-1]},
                raise_on_error=False,
            )
    else:
        print("Every rollup partition is already materialized: nothing to re-aggregate. Running retention ...",
              flush=True)
        result = defs.resolve_job_def("retention_job").execute_in_process(
            instance=instance, run_config=QUIET, raise_on_error=False
        )
    mats = _materialized(result)
    summary.append(("partitions materialized", f"{len(missing)} days x {len(ROLLUP_KEYS)} rollups in this run "
                                               f"({len(wanted) - len(missing)} days already done)"))
    for key in ROLLUP_KEYS:
        md = mats.get(key)
        if md:
            read = md.get(RAW_ROWS_READ)
            summary.append((f"{key}", f"{read:,} raw rows read, {md.get('rows_written', 0):,} rows written"))
    retention = mats.get("retention_pruning", {})
    pruned = {k.removeprefix("deleted_"): v for k, v in retention.items() if k.startswith("deleted_")}
    if retention:
        summary.append(("rows pruned", ", ".join(f"{t} {v:,}" for t, v in pruned.items()) or "none"))
        summary.append(("days kept (not reconciled)", str(retention.get("days_skipped", 0))))
    if not result.success:
        summary.append(("rollup run", "FAILED: " + "; ".join(_failures(result)) + " (details: make dev)"))
    return _check_lines(result), result.success
