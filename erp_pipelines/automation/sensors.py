"""Sensors: raw-table observations, late data, changed migrations, rollup freshness.

- `erp_raw_tables_sensor` observes the two tables the app writes (row count, newest timestamp, highest id)
  so the external assets show activity and a row-count plot in the UI.
- `late_data_sensor` notices rows that arrive for days already rolled up (the app writes a past
  `occurred_at`, a replica catches up) and re-materializes exactly those partitions. Cheap and bounded:
  the cursor is the highest id seen per raw table; each tick scans only the ids after it (at most
  `MAX_IDS_PER_TICK`, re-reading `ID_MARGIN` ids before it, because ids are handed out before commit and
  can become visible out of order), groups them by day, and for the materialized days among them compares
  the day's current (row count, max id) with the fingerprint recorded in that partition's latest
  materialization metadata (`raw_fingerprints`). Only a changed fingerprint requests a run, keyed by the
  fingerprint so the same change never triggers twice. Days whose check is pending carry over in the
  cursor (at most `MAX_DAYS_PER_TICK` per tick). It does not notice an UPDATE of an existing row that
  keeps the count and max id; such corrections need a manual re-materialization.
- `migrations_folder_sensor` requests `schema_sync_job` as a DRY RUN when the migrations folder changes
  (a migration added, removed, or its checksum changed), so a DBA sees the plan before applying it.
- `rollup_freshness_sensor` evaluates the rollups' per-partition freshness checks (yesterday's partition by
  03:00 UTC). The rollups also carry a `FreshnessPolicy` (Dagster 1.13's own form), but that judges the
  newest materialization of ANY partition, so a backfill of an old day would hide a missed night; the
  check looks at yesterday's partition itself, and fails even when no run happens (rollups/checks.py).
"""

import hashlib
import json
import warnings
from datetime import date
from typing import Any

import dagster as dg
import psycopg

from erp_pipelines.automation.jobs import rollup_refresh_job
from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.partitions import DAILY_PARTITIONS, day_bounds
from erp_pipelines.prisma.migrations import read_migrations_folder
from erp_pipelines.resources import ErpDatabase, PrismaMigrationsFolder
from erp_pipelines.rollups import sql
from erp_pipelines.rollups.assets import RAW_TABLE_OF, RAW_TABLE_SPECS
from erp_pipelines.rollups.definitions import ROLLUP_FRESHNESS_CHECKS

ID_MARGIN = 1000
MAX_IDS_PER_TICK = 200_000
MAX_DAYS_PER_TICK = 31
SCHEMA_SYNC_JOB = "schema_sync_job"
DRY_RUN_CONFIG = {"ops": {"erp_schema": {"config": {"dry_run": True}}}}


def _read_connection(erp_db: ErpDatabase, purpose: str) -> Any:
    """An autocommit connection (a sensor only reads; no transaction is held between its queries)."""
    return erp_db.connect(purpose, autocommit=True)


def _use_schema(conn: psycopg.Connection, schema: str) -> None:
    conn.execute("SELECT set_config('search_path', quote_ident(%s), false)", (schema,))


@dg.sensor(
    name="erp_raw_tables_sensor",
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Observes system_metric_samples and client_usage_events: row count, newest timestamp.",
)
def erp_raw_tables_sensor(context: dg.SensorEvaluationContext, erp_db: ErpDatabase) -> dg.SensorResult:
    events = []
    with _read_connection(erp_db, "sensor:raw_tables") as conn:
        _use_schema(conn, erp_db.db_schema)
        for spec in RAW_TABLE_SPECS:
            table = spec.key.path[-1]
            rows, newest, max_id = conn.execute(sql.RAW_TABLE_OBSERVATION[table]).fetchone()
            metadata: dict[str, Any] = {
                "dagster/row_count": dg.MetadataValue.int(int(rows)),
                "dagster/table_name": dg.MetadataValue.text(f"{erp_db.db_schema}.{table}"),
                "max_id": dg.MetadataValue.int(int(max_id)),
                "newest_row_at": dg.MetadataValue.text(newest.isoformat(sep=" ") if newest else "(empty)"),
            }
            events.append(dg.AssetObservation(asset_key=spec.key, metadata=metadata))
    return dg.SensorResult(asset_events=events)


def recorded_fingerprint(instance: dg.DagsterInstance, asset_key: str, day: str) -> tuple[int, int] | None:
    """(rows, max_id) of `day` as the partition's latest materialization saw them, if recorded."""
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset_key), asset_partitions=[day]), limit=1
    )
    if not result.records:
        return None
    materialization = result.records[0].asset_materialization
    entry = materialization.metadata.get("raw_fingerprints") if materialization else None
    value = getattr(entry, "value", None) or getattr(entry, "data", None)
    fp = value.get(day) if isinstance(value, dict) else None
    return (int(fp["rows"]), int(fp["max_id"])) if isinstance(fp, dict) else None


@dg.sensor(
    name="late_data_sensor",
    job=rollup_refresh_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Re-materializes rollup partitions whose raw rows changed after they were rolled up.",
)
def late_data_sensor(context: dg.SensorEvaluationContext, erp_db: ErpDatabase) -> dg.SensorResult:
    cursor: dict[str, Any] = json.loads(context.cursor) if context.cursor else {}
    last_complete = DAILY_PARTITIONS.get_last_partition_key()
    first = DAILY_PARTITIONS.get_first_partition_key()
    changed: dict[str, dict[str, tuple[int, int]]] = {}
    new_cursor: dict[str, Any] = {}
    with _read_connection(erp_db, "sensor:late_data") as conn:
        _use_schema(conn, erp_db.db_schema)
        for asset_key, table in RAW_TABLE_OF.items():
            state = cursor.get(table, {})
            seen = int(state.get("max_id", 0))
            pending = set(state.get("pending", []))
            newest = conn.execute(sql.RAW_MAX_ID[table]).fetchone()[0]
            upto = min(newest, seen + MAX_IDS_PER_TICK)
            after = max(seen - ID_MARGIN, 0)
            for day, _rows in conn.execute(
                sql.RAW_DAYS_OF_ID_RANGE[table], {"after_id": after, "upto_id": upto}
            ).fetchall():
                if first <= str(day) and (last_complete is None or str(day) <= last_complete):
                    pending.add(str(day))
            materialized = context.instance.get_materialized_partitions(dg.AssetKey(asset_key))
            pending &= materialized  # never-materialized days are the schedule's catch-up, not late data
            todo, rest = sorted(pending)[:MAX_DAYS_PER_TICK], sorted(pending)[MAX_DAYS_PER_TICK:]
            for day in todo:
                day_start, day_end = day_bounds(date.fromisoformat(day))
                rows, max_id = conn.execute(
                    sql.RAW_DAY_FINGERPRINT[table], {"day_start": day_start, "day_end": day_end}
                ).fetchone()
                if recorded_fingerprint(context.instance, asset_key, day) != (int(rows), int(max_id)):
                    changed.setdefault(day, {})[asset_key] = (int(rows), int(max_id))
            new_cursor[table] = {"max_id": max(seen, upto), "pending": rest}
    run_requests = []
    for day, assets in sorted(changed.items()):
        key = ";".join(f"{a}:{rows}:{max_id}" for a, (rows, max_id) in sorted(assets.items()))
        context.log.info(f"Late data for {day}: re-materializing {', '.join(sorted(assets))}.")
        run_requests.append(
            dg.RunRequest(
                run_key=f"late-{day}-{key}",
                partition_key=day,
                asset_selection=[dg.AssetKey(a) for a in sorted(assets)],
                tags={"erp/trigger": "late_data"},
            )
        )
    return dg.SensorResult(run_requests=run_requests, cursor=json.dumps(new_cursor, sort_keys=True))


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
