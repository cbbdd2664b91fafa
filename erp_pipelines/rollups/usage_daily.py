"""`client_daily_usage`: one row per UTC day, client and module with events: counts per category and active users.

See rollups/metric_daily.py for the transactions, locks and errors both rollups share.
"""


from datetime import date, timedelta

import dagster as dg
from pydantic import Field

from erp_pipelines.dbwork import erp_connection, step_errors, write_transaction
from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.partitions import DAILY_PARTITIONS, day_bounds
from erp_pipelines.resources import ErpDatabase
from erp_pipelines.rollups import checks, sql
from erp_pipelines.rollups.spec import ERP_DB_POOL, GROUP, RETRY_POLICY, RollupSpec
from erp_pipelines.rollups.steps import (
    guard_today,
    incomplete_reason,
    log_incomplete,
    now_naive,
    table_name_metadata,
    window_days,
)

CLIENT_USAGE_EVENTS = dg.AssetSpec(
    "client_usage_events",
    description="Raw usage events the ERP writes per client, module and user. Written by the app, never by "
    "Dagster; observed by `erp_raw_tables_sensor`. Kept unless `usage_event_retention_days` is set.",
    kinds={"postgres"},
    group_name=GROUP,
    metadata={"dagster/table_name": "client_usage_events"},
)
USAGE_RECONCILIATION_CHECK = "counts_match_events"
USAGE_NULL_MODULE_CHECK = "no_events_without_module"

DEFAULT_EVENT_CATEGORIES: dict[str, list[str]] = {
    "view": ["view", "page_view", "read", "open"],
    "create": ["create", "insert", "add"],
    "edit": ["edit", "update", "modify"],
    "delete": ["delete", "remove"],
}
CATEGORIES = ("view", "create", "edit", "delete")

USAGE_DAILY = RollupSpec(
    aggregate_table="client_daily_usage",
    aggregate_day_column="date",
    aggregate_key=("date", "client_id", "module_id"),
    raw_table="client_usage_events",
    ts_column="occurred_at",
    id_column="id",
    raw_columns=("client_id", "module_id", "user_id", "event_type", "occurred_at"),
    raw_spec=CLIENT_USAGE_EVENTS,
    description="One row per UTC day, client and module with events: counts per category and active users.",
    privileges={"client_usage_events": "SELECT", "client_daily_usage": "SELECT, INSERT, UPDATE, DELETE"},
    retention_privileges={"client_usage_events": "SELECT, DELETE", "client_daily_usage": "SELECT, DELETE"},
    reconciliation_check=USAGE_RECONCILIATION_CHECK,
    check_names=(USAGE_RECONCILIATION_CHECK, USAGE_NULL_MODULE_CHECK),
    replace_day_sql=sql.USAGE_DAY_REPLACE,
    reconcile_day_sql=sql.USAGE_DAY_MISMATCHES,
)


class UsageRollupConfig(dg.Config):
    today: str | None = Field(
        default=None,
        description="The UTC day (YYYY-MM-DD) taken as 'today' by the data-loss guard's retention cutoff. "
        "Unset (the default): the wall clock. For replays and tests only.",
    )
    usage_event_retention_days: int | None = Field(
        default=None,
        description="Set it to retention_pruning's usage_event_retention_days when raw events are pruned: "
        "days older than that keep their aggregate instead of being re-aggregated from partial raw rows.",
    )
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



@dg.asset(
    key="client_daily_usage",
    deps=[CLIENT_USAGE_EVENTS, "erp_schema"],
    partitions_def=DAILY_PARTITIONS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"postgres"},
    pool=ERP_DB_POOL,
    group_name=GROUP,
    retry_policy=RETRY_POLICY,
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
    with step_errors():
        return _roll_up_usage(context, config, erp_db)


def _roll_up_usage(
    context: dg.AssetExecutionContext, config: UsageRollupConfig, erp_db: ErpDatabase
) -> dg.MaterializeResult:
    categories = category_params(config.event_categories)
    today = guard_today(config.today)
    events_cutoff = (
        today - timedelta(days=config.usage_event_retention_days)
        if config.usage_event_retention_days
        else None
    )
    kept_incomplete: dict[str, str] = {}
    categorized = {t for types in categories.values() for t in types}
    days, _window_start, _window_end = window_days(context)
    now = now_naive()
    totals = {"rollup_rows": 0, "inserted": 0, "updated": 0, "deleted": 0}
    events_read = null_module = 0
    uncategorized: dict[str, int] = {}
    kept: list[str] = []
    mismatched: dict[date, str] = {}
    fingerprints: dict[str, dict[str, int]] = {}
    days_with_raw = 0
    with erp_connection(erp_db, "rollup:client_daily_usage", USAGE_DAILY.privileges) as conn:
        with write_transaction(conn, USAGE_DAILY.lock_key):
            for n_day, day in enumerate(days, start=1):
                if len(days) > 1:
                    context.log.info(f"client_daily_usage: day {n_day}/{len(days)} ({day})")
                day_start, day_end = day_bounds(day)
                params = {"day": day, "day_start": day_start, "day_end": day_end, "now": now, **categories}
                stats = conn.execute(sql.USAGE_DAY_STATS, params).fetchall()
                day_events = sum(n for _, n, _, _ in stats)
                fingerprints[str(day)] = {
                    "rows": int(day_events),
                    "max_id": int(max((m for _, _, _, m in stats), default=0)),
                }
                events_read += day_events
                if day_events > 0:
                    # The day's categorized events with a module, from the stats just read (no second scan).
                    raw_total = sum(n - nm for t, n, nm, _ in stats if t in categorized)
                    agg_total, agg_rows = conn.execute(sql.USAGE_DAY_AGGREGATE_TOTALS, params).fetchone()
                    why = (
                        incomplete_reason(day, events_cutoff, [("categorized events", raw_total, agg_total)])
                        if agg_rows
                        else None
                    )
                    if why:
                        kept_incomplete[str(day)] = why
                        continue
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
    log_incomplete(context, "client_daily_usage", kept_incomplete)
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
            "dagster/table_name": table_name_metadata(erp_db, "client_daily_usage"),
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
            "days_kept_raw_incomplete": dg.MetadataValue.json(kept_incomplete),
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

