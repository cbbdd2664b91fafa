"""`client_daily_usage`: one row per UTC day, client and module with events: counts per category and active users.

The asset step is the one every rollup runs (rollups/machine.py, from `BODY`: what this rollup does
differently, as data); the per-day loop, its chunked transactions, the ledger and what a pruned day does
are shared by every rollup (rollups/steps.py); rollups/metric_daily.py describes the errors. Checks: reconciliation (the
day's rows read back equal, by count and hash of every count and active_users, the rows computed from the
raw events in the same snapshot; blocking; retention recomputes independently before deleting), events without a module (WARN), late rows for pruned days (WARN), raw times in UTC (ERROR).
"""


from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import dagster as dg
import psycopg
from pydantic import Field

from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.rollups import checks, daily_report, ledger, machine, sql, steps
from erp_pipelines.rollups.spec import GROUP, BoundSql, Reconciliation, RollupSpec

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

def read_reconciliation(conn: psycopg.Connection, bound: BoundSql, params: dict[str, Any]) -> Reconciliation:
    """The day's (client, module) rows against an independent recomputation from the raw events, and the
    day's fingerprint, in one read (USAGE_DAY_MISMATCHES, bound): retention's gate. A day whose events all
    lack a module has no rows to hold them: it does not reconcile (its events are kept raw)."""
    mismatched, aggregate_rows, _raw_pairs, null_keys, raw_rows, raw_hash = conn.execute(
        bound.reconcile_day_sql, params
    ).fetchone()
    fingerprint = ledger.Fingerprint(int(raw_rows), Decimal(raw_hash))
    if aggregate_rows == 0:
        return Reconciliation(fingerprint, "no client_daily_usage rows", int(null_keys))
    if mismatched:
        return Reconciliation(
            fingerprint, f"{mismatched} (client, module) pair(s) of client_daily_usage differ from the raw events",
            int(null_keys),
        )
    return Reconciliation(fingerprint, None, int(null_keys))




class UsageRollupConfig(steps.RollupStepConfig):
    """client_daily_usage's run config: the common rollup fields, the old retention key, the category mapping."""

    usage_event_retention_days: int | None = Field(
        default=None,
        description="Accepted for old run configs and ignored: a pruned day's aggregate is never rebuilt, "
        "whatever this says (the pruned-days ledger decides).",
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



def write_usage_day(
    conn: psycopg.Connection, day: date, params: dict[str, Any], bound: BoundSql
) -> steps.DayWrite:
    """Replace one day's rows and take the day's fingerprint in the same read of the day, then read the rows
    back (same snapshot): their number and hash must equal those of the rows the write computed.
    `bound` holds USAGE_DAY_REPLACE with the per-row hash put in (RollupSpec.bind).

    This proves the table holds exactly what was computed from the fingerprinted raw rows. The independent
    recomputation (USAGE_DAY_MISMATCHES: count(DISTINCT), a FULL JOIN) runs where rows are deleted:
    retention, in the deleting snapshot, before it deletes a day.
    """
    categorized = {t for key in ("view_types", "create_types", "edit_types", "delete_types") for t in params[key]}
    (raw_rows, raw_hash, by_type, rollup_rows, rollup_hash, inserted, updated, deleted) = conn.execute(
        bound.replace_day_sql, params
    ).fetchone()
    uncategorized = {t: int(n) for t, n, _ in by_type if t not in categorized}
    null_module = sum(int(nm) for _, _, nm in by_type)
    aggregate_rows, aggregate_hash, *numbers = conn.execute(sql.USAGE_DAY_READBACK, params).fetchone()
    mismatches = []
    if (aggregate_rows, aggregate_hash) != (rollup_rows, rollup_hash):
        mismatches.append(
            f"the day's {aggregate_rows} aggregate row(s) differ from the {rollup_rows} computed from the raw events "
            "(a hash over every count and active_users)"
        )
    if params.get("recompute_check"):
        bad_pairs, *_rest = conn.execute(bound.reconcile_day_sql, params).fetchone()
        if bad_pairs:
            mismatches.append(f"{bad_pairs} (client, module) pair(s) differ from an independent recomputation")
    mismatch = "; ".join(mismatches) or None
    return steps.DayWrite(
        fingerprint=ledger.Fingerprint(int(raw_rows), Decimal(raw_hash)),
        inserted=int(inserted),
        updated=int(updated),
        deleted=int(deleted),
        mismatch=mismatch,
        figures={
            **dict(zip(daily_report.USAGE_FIGURE_NAMES, (int(n) for n in numbers), strict=True)),
            "uncategorized_events": sum(uncategorized.values()),
            "null_module_events": null_module,
        },
        extra={"uncategorized": uncategorized, "null_module": null_module},
    )


def _rolled(results: Sequence[steps.DayResult]) -> list[steps.DayResult]:
    return [r for r in results if r.outcome == steps.DayOutcome.ROLLED_UP]


def uncategorized_by_type(results: Sequence[steps.DayResult]) -> dict[str, int]:
    """Events of types outside the category mapping over the window's rolled-up days, per type."""
    uncategorized: dict[str, int] = {}
    for r in _rolled(results):
        for t, n in r.extra.get("uncategorized", {}).items():
            uncategorized[t] = uncategorized.get(t, 0) + n
    return dict(sorted(uncategorized.items()))


def _run_metadata(results: Sequence[steps.DayResult], _extra: Any) -> dict[str, dg.MetadataValue]:
    uncategorized = uncategorized_by_type(results)
    return {
        "uncategorized_events": dg.MetadataValue.int(sum(uncategorized.values())),
        "uncategorized_by_type": dg.MetadataValue.json(uncategorized),
        "null_module_events": dg.MetadataValue.int(sum(int(r.extra.get("null_module", 0)) for r in _rolled(results))),
    }


def _notes(results: Sequence[steps.DayResult]) -> list[str]:
    uncategorized = uncategorized_by_type(results)
    if not uncategorized:
        return []
    return [
        f"{sum(uncategorized.values())} event(s) of types outside the category mapping were not counted in any "
        f"category (they do count towards active_users): {uncategorized}"
    ]


BODY = machine.RollupBody(
    config_type=UsageRollupConfig,
    write_day=write_usage_day,
    checks=(
        machine.CheckDecl(
            USAGE_RECONCILIATION_CHECK,
            blocking=True,
            description="Per day, the (client, module) rows read back hold exactly the four counts and "
            "active_users the write computed from the raw events it fingerprinted, in the same snapshot (run "
            "config recompute_check adds an independent recomputation); blocks retention_pruning in the same "
            "run when not.",
        ),
        machine.CheckDecl(
            USAGE_NULL_MODULE_CHECK,
            description="Per day: usage events without a module_id cannot enter client_daily_usage's key.",
        ),
    ),
    window_rows=lambda conn, window: conn.execute(sql.USAGE_WINDOW_ROWS, window).fetchone()[0],
    day_checks={
        USAGE_NULL_MODULE_CHECK: lambda r, _extra: checks.null_module_day(
            r.day, int(r.extra.get("null_module", r.null_key_rows))
        ),
    },
    params=lambda config: category_params(config.event_categories),
    run_metadata=_run_metadata,
    notes=_notes,
    raw_rows_label="events_read",
    zero_when_not_read=("null_module_events", "uncategorized_events"),
    raw_rows_noun="events",
)
USAGE_DAILY = RollupSpec(
    aggregate_table="client_daily_usage",
    aggregate_day_column="date",
    aggregate_key=("date", "client_id", "module_id"),
    raw_table="client_usage_events",
    ts_column="occurred_at",
    id_column="id",
    raw_columns=("client_id", "module_id", "user_id", "event_type", "occurred_at"),
    raw_key_columns=("client_id", "module_id"),
    raw_spec=CLIENT_USAGE_EVENTS,
    description="One row per UTC day, client and module with events: counts per category and active users.",
    privileges={"client_usage_events": "SELECT", "client_daily_usage": "SELECT, INSERT, UPDATE, DELETE"},
    retention_privileges={"client_usage_events": "SELECT, DELETE", "client_daily_usage": "SELECT, DELETE"},
    reconciliation_check=USAGE_RECONCILIATION_CHECK,
    check_names=(USAGE_RECONCILIATION_CHECK, USAGE_NULL_MODULE_CHECK, *steps.SHARED_CHECK_NAMES),
    replace_day_sql=sql.USAGE_DAY_REPLACE,
    reconcile_day_sql=sql.USAGE_DAY_MISMATCHES,
    read_reconciliation=read_reconciliation,
    aggregate_exists_sql=sql.USAGE_DAY_EXISTS,
    delete_day_sql=sql.USAGE_DAY_DELETE,
    raw_below_aggregate_sql=sql.USAGE_RAW_BELOW_AGGREGATE,
    raw_retention="usage_event_retention_days",
    body=BODY,
)
client_daily_usage = machine.build_asset(USAGE_DAILY)


# What the instance erp_pipelines/defs/rollups/client_daily_usage/defs.yaml names (`implementation`).
ROLLUP = USAGE_DAILY
ASSET = client_daily_usage
