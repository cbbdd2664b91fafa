"""Sensors: raw-table observations, late data, changed migrations, rollup freshness.

- `erp_raw_tables_sensor` observes the two tables the app writes (row count, newest timestamp, highest id)
  so the external assets show activity and a row-count plot in the UI.
- `late_data_sensor` re-materializes exactly the rollup partitions whose raw rows the ERP inserted,
  updated or deleted after they were rolled up. It reads the distinct (raw table, day) pairs of the
  change-capture log (erp_pipelines.capture; a loose index scan, so cheap however many marks), keeps the
  days already materialized, and asks for one `rollup_refresh_job` run per day with the rollups that table
  feeds. No cursor and no id margin: the marks are cleared only by the rollup run, in its own write
  transaction, for exactly the marks its snapshot saw, so a sensor crash, a commit out of id order or a
  commit during the run loses nothing, and marks left after a failed run ask for the day again (rules
  and flood guard in capture/refresh.py). With change capture opted out only retention's marks arrive here.
- `migrations_folder_sensor` requests `schema_sync_job` as a DRY RUN when the migrations folder changes
  (a migration added, removed, or its checksum changed), so a DBA sees the plan before applying it.
- `rollup_freshness_sensor` evaluates the rollups' per-partition freshness checks (yesterday's partition by
  03:00 UTC). The rollups also carry a `FreshnessPolicy` (Dagster 1.13's own form), but that judges the
  newest materialization of ANY partition, so a backfill of an old day would hide a missed night; the
  check looks at yesterday's partition itself, and fails even when no run happens (rollups/checks.py).
"""

import hashlib
import json
import time
import warnings
from typing import Any

import dagster as dg
import psycopg
from psycopg import sql as psql

from erp_pipelines.automation.jobs import rollup_refresh_job
from erp_pipelines.capture import log as capture_log
from erp_pipelines.capture.refresh import RefreshHistory, days_to_refresh, plan_refreshes
from erp_pipelines.capture.targets import capture_targets
from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.own_schema import own_schema_name
from erp_pipelines.partitions import DAILY_PARTITIONS, PARTITION_NAME_TAG
from erp_pipelines.prisma.migrations import read_migrations_folder
from erp_pipelines.resources import ErpDatabase, PrismaMigrationsFolder
from erp_pipelines.rollups.definitions import ROLLUP_FRESHNESS_CHECKS
from erp_pipelines.rollups.registry import ROLLUPS

MAX_DAYS_PER_TICK = 31
HISTORY_RUNS = 20
TRIGGER_TAG = "erp/trigger"
LATE_DATA = "late_data"
IN_FLIGHT_STATUSES = {
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
}
FAILED_STATUSES = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
SCHEMA_SYNC_JOB = "schema_sync_job"
DRY_RUN_CONFIG = {"ops": {"erp_schema": {"config": {"dry_run": True}}}}


def _read_connection(erp_db: ErpDatabase, purpose: str) -> Any:
    """An autocommit connection (a sensor only reads; no transaction is held between its queries)."""
    return erp_db.connect(purpose, autocommit=True)


# The observation's newest timestamp as PostgreSQL's text: a row stamped past Python's year 9999 (the year
# 20000, `infinity`) or before year 1 cannot be read as a datetime, and must not fail every tick.
OBSERVATION_AS_TEXT = psql.SQL("SELECT o.n, o.newest::text, o.max_id FROM ({observation}) AS o(n, newest, max_id)")


def _use_schema(conn: psycopg.Connection, schema: str) -> None:
    conn.execute("SELECT set_config('search_path', quote_ident(%s), false)", (schema,))


@dg.sensor(
    name="erp_raw_tables_sensor",
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Observes every rollup's raw table: row count, newest timestamp, highest id.",
)
def erp_raw_tables_sensor(context: dg.SensorEvaluationContext, erp_db: ErpDatabase) -> dg.SensorResult:
    events = []
    with _read_connection(erp_db, "sensor:raw_tables") as conn:
        _use_schema(conn, erp_db.db_schema)
        for spec in {s.raw_table: s for s in ROLLUPS}.values():  # one observation per raw table
            table = spec.raw_table
            # the newest timestamp as PostgreSQL's text: a row stamped in the year 20000 or `infinity` must
            # not break the sensor on every tick
            observation = OBSERVATION_AS_TEXT.format(observation=spec.observation_sql())
            rows, newest, max_id = conn.execute(observation).fetchone()
            metadata: dict[str, Any] = {
                "dagster/row_count": dg.MetadataValue.int(int(rows)),
                "dagster/table_name": dg.MetadataValue.text(f"{erp_db.db_schema}.{table}"),
                "max_id": dg.MetadataValue.int(int(max_id)),
                "newest_row_at": dg.MetadataValue.text(newest or "(empty)"),
            }
            events.append(dg.AssetObservation(asset_key=spec.raw_spec.key, metadata=metadata))
    return dg.SensorResult(asset_events=events)


def refresh_history(instance: dg.DagsterInstance, day: str) -> RefreshHistory:
    """The late-data refresh runs of `day` (the newest `HISTORY_RUNS`): in flight, last one, failures in a row."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            job_name=rollup_refresh_job.name, tags={PARTITION_NAME_TAG: day, TRIGGER_TAG: LATE_DATA}
        ),
        limit=HISTORY_RUNS,
    )
    if not records:
        return RefreshHistory()
    if any(r.dagster_run.status in IN_FLIGHT_STATUSES for r in records):
        return RefreshHistory(in_flight=True, last_run_id=records[0].dagster_run.run_id)
    failures = 0
    for record in records:
        if record.dagster_run.status not in FAILED_STATUSES:
            break
        failures += 1
    return RefreshHistory(
        last_run_id=records[0].dagster_run.run_id,
        consecutive_failures=failures,
        last_failure_end=records[0].end_time if failures else None,
    )


@dg.sensor(
    name="late_data_sensor",
    job=rollup_refresh_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Re-materializes the rollup partitions whose raw rows the ERP inserted, updated or deleted "
    "after they were rolled up (the change-capture log), and re-requests a refresh that failed.",
)
def late_data_sensor(context: dg.SensorEvaluationContext, erp_db: ErpDatabase) -> dg.SensorResult:
    with _read_connection(erp_db, "sensor:late_data") as conn:
        if not capture_log.log_exists(conn):
            return dg.SensorResult(
                skip_reason=f"The change log {own_schema_name()}.invalidations does not exist yet: "
                "materialize pipeline_state (schema_sync_job) to install it."
            )
        marked = capture_log.marked_days(conn)
        pruned = capture_log.pruned_among(conn, marked)
    marked = [m for m in marked if m not in pruned]
    clamped = [m for m in marked if m.out_of_range]
    if clamped:
        context.log.warning(
            f"{len(clamped)} change mark(s) for days out of range (a raw row stamped past the year 9999, before "
            "year 1, or at +/-infinity) are left alone; the rollups' raw_times_are_utc check counts the rows."
        )
    targets = capture_targets()
    materialized = {
        rollup: context.instance.get_materialized_partitions(dg.AssetKey(rollup))
        for rollup in sorted({r for t in targets for r in t.rollups})
    }
    wanted = days_to_refresh(
        marked,
        targets,
        materialized,
        DAILY_PARTITIONS.get_first_partition_key(),
        DAILY_PARTITIONS.get_last_partition_key(),
    )
    history = {day: refresh_history(context.instance, day) for day in wanted}
    requests, waiting = plan_refreshes(wanted, history, time.time(), MAX_DAYS_PER_TICK)
    for day, why in waiting.items():
        context.log.info(f"Late data for {day} waits: {why}.")
    run_requests = []
    for request in requests:
        again = f" (attempt {request.attempt}: the last refresh failed)" if request.attempt > 1 else ""
        context.log.info(f"Late data for {request.day}: re-materializing {', '.join(request.rollups)}{again}.")
        run_requests.append(
            dg.RunRequest(
                run_key=request.run_key,
                partition_key=request.day,
                asset_selection=[dg.AssetKey(r) for r in request.rollups],
                tags={TRIGGER_TAG: LATE_DATA, "erp/late_data_attempt": str(request.attempt)},
            )
        )
    skip = None if run_requests else (
        f"No changed day to refresh ({len(marked)} marked (table, day) pair(s), {len(waiting)} waiting)."
    )
    return dg.SensorResult(run_requests=run_requests, skip_reason=skip)


def _listing_digest(listing: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(listing, sort_keys=True).encode()).hexdigest()


@dg.sensor(
    name="migrations_folder_sensor",
    job_name=SCHEMA_SYNC_JOB,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a DRY RUN of schema_sync_job when a migration is added, removed or changed.",
)
def migrations_folder_sensor(
    context: dg.SensorEvaluationContext, migrations: PrismaMigrationsFolder
) -> dg.SensorResult | dg.SkipReason:
    try:
        folder = read_migrations_folder(migrations.folder())
    except ErpPipelinesError as exc:
        return dg.SkipReason(f"The migrations folder cannot be read, so no plan is requested: {exc}")
    listing = {m.name: m.checksum for m in folder.migrations}
    digest = _listing_digest(listing)
    previous = json.loads(context.cursor) if context.cursor else None
    if previous is not None and previous.get("digest") == digest:
        return dg.SkipReason("The migrations folder is unchanged.")
    before: dict[str, str] = previous.get("migrations", {}) if previous else {}
    added = sorted(set(listing) - set(before))
    removed = sorted(set(before) - set(listing))
    changed = sorted(n for n in set(listing) & set(before) if listing[n] != before[n])
    what = (
        "first look at the folder"
        if previous is None
        else "; ".join(
            part
            for part in (
                f"added {', '.join(added)}" if added else "",
                f"removed {', '.join(removed)}" if removed else "",
                f"checksum changed {', '.join(changed)}" if changed else "",
            )
            if part
        )
    )
    context.log.info(f"Migrations folder changed ({what}); requesting a dry run of {SCHEMA_SYNC_JOB}.")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_config=DRY_RUN_CONFIG,
                # Only the sync: a dry run materializes nothing, so the downstream schema assets (and their
                # checks) would otherwise show up as skipped in the UI.
                asset_selection=[dg.AssetKey("erp_schema")],
                tags={"erp/trigger": "migrations_changed", "erp/migrations_digest": digest[:16]},
            )
        ],
        cursor=json.dumps({"digest": digest, "migrations": listing}, sort_keys=True),
    )


# Dagster marks this helper superseded by FreshnessPolicy; kept because the policy cannot tell WHICH
# partition was materialized (module docstring), and the per-partition check can.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.SupersessionWarning)
    rollup_freshness_sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=ROLLUP_FRESHNESS_CHECKS,
        name="rollup_freshness_sensor",
        minimum_interval_seconds=600,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
