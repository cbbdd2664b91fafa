"""Daily rollups of the ERP's raw tables: `system_metric_daily` and `client_daily_usage`.

Both are partitioned by UTC day (`erp_pipelines.partitions.DAILY_PARTITIONS`) and computed inside
PostgreSQL, one set-based statement per day (see sql.py for why one statement per day and not per
window). A run covers `context.partition_time_window`: one day for the nightly run, N days for a backfill,
which `BackfillPolicy.single_run()` makes ONE run.

Transactions: the whole window is written in ONE transaction, one statement per day. The run then either
changes every partition it reports as materialized or none (a failure on day 200 of a backfill rolls back
days 1-199, and Dagster marks all of them failed, so the database and the UI never disagree). The cost is
one long transaction for a big backfill; it only holds row locks on the aggregate rows it rewrites (the app
inserts raw rows, which nothing here locks), so it delays no ERP write. Re-running is always safe: each
day's result is exactly the rollup of that day's raw rows, whatever was there before.

A day whose raw rows are gone (pruned by `retention_pruning`) keeps its aggregate untouched; the run says
so in the log and in the `days_kept_without_raw_rows` metadata.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import psycopg
from pydantic import Field

from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.partitions import DAILY_PARTITIONS, day_bounds, days_in_window, to_naive_utc
from erp_pipelines.resources import ErpDatabase
from erp_pipelines.rollups import checks, sql

GROUP = "rollups"
ERP_DB_POOL = "erp_db"

SYSTEM_METRIC_SAMPLES = dg.AssetSpec(
    "system_metric_samples",
    description="Raw health samples the ERP writes every refresh interval (latency, error rate, request "
    "and error counts). Written by the app, never by Dagster; observed by `erp_raw_tables_sensor`, pruned "
    "by `retention_pruning` once a day's totals are safe in `system_metric_daily`.",
    kinds={"postgres"},
    group_name=GROUP,
    metadata={"dagster/table_name": "system_metric_samples"},
)
CLIENT_USAGE_EVENTS = dg.AssetSpec(
    "client_usage_events",
    description="Raw usage events the ERP writes per client, module and user. Written by the app, never by "
    "Dagster; observed by `erp_raw_tables_sensor`. Kept unless `usage_event_retention_days` is set.",
    kinds={"postgres"},
    group_name=GROUP,
    metadata={"dagster/table_name": "client_usage_events"},
)
RAW_TABLE_SPECS = (SYSTEM_METRIC_SAMPLES, CLIENT_USAGE_EVENTS)

# Check names, next to their asset.
METRIC_RECONCILIATION_CHECK = "totals_match_samples"
METRIC_HEALTH_CHECK = "health_thresholds"
USAGE_RECONCILIATION_CHECK = "counts_match_events"
USAGE_NULL_MODULE_CHECK = "no_events_without_module"

DEFAULT_EVENT_CATEGORIES: dict[str, list[str]] = {
    "view": ["view", "page_view", "read", "open"],
    "create": ["create", "insert", "add"],
    "edit": ["edit", "update", "modify"],
    "delete": ["delete", "remove"],
}
CATEGORIES = ("view", "create", "edit", "delete")


class UsageRollupConfig(dg.Config):
    event_categories: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_EVENT_CATEGORIES.items()},
        description="event_type values (matched case-insensitively) counted as view, create, edit and "
        "delete. Other types are counted per type in the `uncategorized_by_type` metadata.",
    )


def category_params(event_categories: dict[str, list[str]]) -> dict[str, list[str]]:
    """The four `%(<category>_types)s` text[] parameters, validated and lower-cased."""
    unknown = sorted(set(event_categories) - set(CATEGORIES))
    if unknown:
        raise ErpPipelinesError(
            f"Unknown usage categories {unknown}.",
            where="config event_categories of client_daily_usage",
            fix=f"Use only the keys {', '.join(CATEGORIES)} (each a list of event_type values).",
        )
    seen: dict[str, str] = {}
    params: dict[str, list[str]] = {}
    for category in CATEGORIES:
        types = sorted({t.strip().lower() for t in event_categories.get(category, []) if t.strip()})
        for t in types:
            if t in seen:
                raise ErpPipelinesError(
                    f"event_type {t!r} is mapped to both {seen[t]!r} and {category!r}.",
                    where="config event_categories of client_daily_usage",
                    fix="Map every event_type to one category only.",
                )
            seen[t] = category
        params[f"{category}_types"] = types
    return params


@contextmanager
def erp_connection(erp_db: ErpDatabase, purpose: str) -> Iterator[psycopg.Connection]:
    """A connection whose search_path is the ERP schema, so the SQL constants can stay unqualified."""
    with erp_db.connect(purpose) as conn:
        conn.execute("SELECT set_config('search_path', quote_ident(%s), false)", (erp_db.db_schema,))
        conn.commit()
        yield conn


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _window(context: dg.AssetExecutionContext) -> tuple[list[date], datetime, datetime]:
    window = context.partition_time_window
    return list(days_in_window(window)), to_naive_utc(window.start), to_naive_utc(window.end)


def _table_name(erp_db: ErpDatabase, table: str) -> dg.MetadataValue:
    return dg.MetadataValue.text(f"{erp_db.db_schema}.{table}")


@dg.asset(
    key="system_metric_daily",
    deps=[SYSTEM_METRIC_SAMPLES, "erp_schema"],
    partitions_def=DAILY_PARTITIONS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"postgres"},
    pool=ERP_DB_POOL,
    group_name=GROUP,
    check_specs=[
        dg.AssetCheckSpec(
            METRIC_RECONCILIATION_CHECK,
            asset="system_metric_daily",
            blocking=True,
            description="reqCount/errCount of every rolled-up day equal the sums of its samples; blocks "
            "retention_pruning in the same run when they do not.",
        ),
        dg.AssetCheckSpec(
            METRIC_HEALTH_CHECK,
            asset="system_metric_daily",
            additional_deps=["system_health_config"],
            description="The newest day's avgLatencyMs and avgErrorRatePct against "
            "system_health_config.thresholds (latency, errorRate): WARN at warning, ERROR at critical.",
        ),
    ],
)
def system_metric_daily(context: dg.AssetExecutionContext, erp_db: ErpDatabase) -> dg.MaterializeResult:
    """One row per UTC day of `system_metric_samples`, request-weighted (formula and why in sql.py)."""
    days, window_start, window_end = _window(context)
    now = _now()
    inserted = updated = samples_read = 0
    kept: list[str] = []
    mismatched: dict[date, str] = {}
    fingerprints: dict[str, dict[str, int]] = {}
    days_with_raw = 0
    with erp_connection(erp_db, "rollup:system_metric_daily") as conn:
        with conn.transaction():
            for day in days:
                day_start, day_end = day_bounds(day)
                params = {"day_start": day_start, "day_end": day_end, "now": now}
                written = conn.execute(sql.METRIC_DAY_UPSERT, params).fetchall()
                inserted += sum(1 for (was_insert,) in written if was_insert)
                updated += sum(1 for (was_insert,) in written if not was_insert)
                samples, req, err, _min_id, max_id, agg_req, agg_err, has_aggregate = conn.execute(
                    sql.METRIC_DAY_RECONCILE, params
                ).fetchone()
                fingerprints[str(day)] = {"rows": int(samples), "max_id": int(max_id or 0)}
                samples_read += samples
                if samples == 0:
                    if has_aggregate:
                        kept.append(str(day))
                    continue
                days_with_raw += 1
                if not has_aggregate:
                    mismatched[day] = "no aggregate row"
                elif (agg_req, agg_err) != (req, err):
                    mismatched[day] = f"aggregate {agg_req}/{agg_err} requests/errors, samples {req}/{err}"
            row_count = conn.execute(
                sql.METRIC_WINDOW_ROWS, {"window_start": window_start, "window_end": window_end}
            ).fetchone()[0]
            day_rows = {day: conn.execute(sql.METRIC_DAY_ROW, {"day_start": day_bounds(day)[0]}).fetchone()
                        for day in days}
        thresholds = _read_thresholds(conn)
    if kept:
        context.log.info(
            f"{len(kept)} day(s) have no samples left (pruned) but keep their aggregate unchanged: "
            + ", ".join(kept[:20])
            + (" ..." if len(kept) > 20 else "")
        )
    context.log.info(
        f"system_metric_daily {days[0]}..{days[-1]}: {samples_read} samples read, {inserted} rows inserted, "
        f"{updated} updated, {len(kept)} day(s) kept without raw rows."
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(int(row_count)),
            "dagster/table_name": _table_name(erp_db, "system_metric_daily"),
            "rows_written": dg.MetadataValue.int(inserted + updated),
            "rows_inserted": dg.MetadataValue.int(inserted),
            "rows_updated": dg.MetadataValue.int(updated),
            "samples_read": dg.MetadataValue.int(int(samples_read)),
            "days_in_window": dg.MetadataValue.int(len(days)),
            "days_with_raw_rows": dg.MetadataValue.int(days_with_raw),
            "days_kept_without_raw_rows": dg.MetadataValue.int(len(kept)),
            "raw_fingerprints": dg.MetadataValue.json(fingerprints),
        },
        check_results=[
            checks.reconciliation_result(
                METRIC_RECONCILIATION_CHECK,
                "system_metric_daily",
                mismatched,
                days_with_raw,
                len(days) - days_with_raw,
            ),
            checks.worst_health_result(METRIC_HEALTH_CHECK, "system_metric_daily", day_rows, thresholds),
        ],
    )


READ_THRESHOLDS = "SELECT thresholds FROM system_health_config WHERE id = 1"


def _read_thresholds(conn: psycopg.Connection) -> Any:
    """system_health_config.thresholds, or None if the row (or the table) is missing."""
    try:
        with conn.transaction():
            row = conn.execute(READ_THRESHOLDS).fetchone()
    except psycopg.errors.UndefinedTable:
        return None
    return row[0] if row else None


@dg.asset(
    key="client_daily_usage",
    deps=[CLIENT_USAGE_EVENTS, "erp_schema"],
    partitions_def=DAILY_PARTITIONS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"postgres"},
    pool=ERP_DB_POOL,
    group_name=GROUP,
    check_specs=[
        dg.AssetCheckSpec(
            USAGE_RECONCILIATION_CHECK,
            asset="client_daily_usage",
            blocking=True,
            description="Per day and (client, module), the four counts equal the categorized raw events "
            "with a module_id; blocks retention_pruning in the same run when they do not.",
        ),
        dg.AssetCheckSpec(
            USAGE_NULL_MODULE_CHECK,
            asset="client_daily_usage",
            description="Usage events without a module_id cannot enter client_daily_usage's key.",
        ),
    ],
)
def client_daily_usage(
    context: dg.AssetExecutionContext, config: UsageRollupConfig, erp_db: ErpDatabase
) -> dg.MaterializeResult:
    """One row per UTC day, client and module with events: counts per category and active users."""
    categories = category_params(config.event_categories)
    categorized = {t for types in categories.values() for t in types}
    days, _window_start, _window_end = _window(context)
    now = _now()
    totals = {"rollup_rows": 0, "inserted": 0, "updated": 0, "deleted": 0}
    events_read = null_module = 0
    uncategorized: dict[str, int] = {}
    kept: list[str] = []
    mismatched: dict[date, str] = {}
    fingerprints: dict[str, dict[str, int]] = {}
    days_with_raw = 0
    with erp_connection(erp_db, "rollup:client_daily_usage") as conn:
        with conn.transaction():
            for day in days:
                day_start, day_end = day_bounds(day)
                params = {"day": day, "day_start": day_start, "day_end": day_end, "now": now, **categories}
                stats = conn.execute(sql.USAGE_DAY_STATS, params).fetchall()
                day_events = sum(n for _, n, _, _ in stats)
                fingerprints[str(day)] = {
                    "rows": int(day_events),
                    "max_id": int(max((m for _, _, _, m in stats), default=0)),
                }
                events_read += day_events
                null_module += sum(nm for _, _, nm, _ in stats)
                for event_type, n, _, _ in stats:
                    if event_type not in categorized:
                        uncategorized[event_type] = uncategorized.get(event_type, 0) + int(n)
                rollup_rows, ins, upd, dele = conn.execute(sql.USAGE_DAY_REPLACE, params).fetchone()
                for key, value in zip(totals, (rollup_rows, ins, upd, dele), strict=True):
                    totals[key] += int(value)
                bad_pairs, aggregate_rows, _raw_pairs = conn.execute(
                    sql.USAGE_DAY_MISMATCHES, params
                ).fetchone()
                if day_events == 0:
                    if aggregate_rows:
                        kept.append(str(day))
                    continue
                days_with_raw += 1
                if bad_pairs:
                    mismatched[day] = f"{bad_pairs} (client, module) pair(s) differ from the raw events"
            row_count = conn.execute(
                sql.USAGE_WINDOW_ROWS, {"first_day": days[0], "end_day": days[-1] + timedelta(days=1)}
            ).fetchone()[0]
    if kept:
        context.log.info(
            f"{len(kept)} day(s) have no usage events left (pruned) but keep their aggregate unchanged: "
            + ", ".join(kept[:20])
            + (" ..." if len(kept) > 20 else "")
        )
    n_uncategorized = sum(uncategorized.values())
    if n_uncategorized:
        context.log.warning(
            f"{n_uncategorized} event(s) of types outside the category mapping were not counted in any "
            f"category (they do count towards active_users): {dict(sorted(uncategorized.items()))}"
        )
    context.log.info(
        f"client_daily_usage {days[0]}..{days[-1]}: {events_read} events read, {totals['inserted']} rows "
        f"inserted, {totals['updated']} updated, {totals['deleted']} deleted, {null_module} without module."
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(int(row_count)),
            "dagster/table_name": _table_name(erp_db, "client_daily_usage"),
            "rows_written": dg.MetadataValue.int(totals["inserted"] + totals["updated"]),
            "rows_inserted": dg.MetadataValue.int(totals["inserted"]),
            "rows_updated": dg.MetadataValue.int(totals["updated"]),
            "rows_deleted": dg.MetadataValue.int(totals["deleted"]),
            "events_read": dg.MetadataValue.int(int(events_read)),
            "uncategorized_events": dg.MetadataValue.int(n_uncategorized),
            "uncategorized_by_type": dg.MetadataValue.json(dict(sorted(uncategorized.items()))),
            "null_module_events": dg.MetadataValue.int(int(null_module)),
            "days_in_window": dg.MetadataValue.int(len(days)),
            "days_with_raw_rows": dg.MetadataValue.int(days_with_raw),
            "days_kept_without_raw_rows": dg.MetadataValue.int(len(kept)),
            "raw_fingerprints": dg.MetadataValue.json(fingerprints),
        },
        check_results=[
            checks.reconciliation_result(
                USAGE_RECONCILIATION_CHECK,
                "client_daily_usage",
                mismatched,
                days_with_raw,
                len(days) - days_with_raw,
            ),
            checks.null_module_result(USAGE_NULL_MODULE_CHECK, "client_daily_usage", int(null_module)),
        ],
    )


ROLLUP_ASSETS = (system_metric_daily, client_daily_usage)
# Which raw table feeds which rollup (late-data sensor, retention).
RAW_TABLE_OF = {"system_metric_daily": "system_metric_samples", "client_daily_usage": "client_usage_events"}
