"""Daily rollups of the ERP's raw tables: `system_metric_daily` and `client_daily_usage`.

Both are partitioned by UTC day (`erp_pipelines.partitions.DAILY_PARTITIONS`) and computed inside
PostgreSQL, one set-based statement per day (see sql.py for why one statement per day and not per
window). A run covers `context.partition_time_window`: one day for the nightly run, N days for a backfill,
which `BackfillPolicy.single_run()` makes ONE run.

Transactions: the whole window is written in ONE REPEATABLE READ transaction, one statement per day.
All its statements see one snapshot, so the reconciliation compares each day's aggregate with exactly the
raw rows it was computed from: a row the app commits meanwhile (late data) is not half-seen (with READ
COMMITTED it made the blocking reconciliation check fail the run; found by the concurrency test), it is
picked up by the late-data sensor. The run then either
changes every partition it reports as materialized or none (a failure on day 200 of a backfill rolls back
days 1-199, and Dagster marks all of them failed, so the database and the UI never disagree). The cost is
one long transaction for a big backfill; it only holds row locks on the aggregate rows it rewrites (the app
inserts raw rows, which nothing here locks), so it delays no ERP write. Re-running is always safe: each
day's result is exactly the rollup of that day's raw rows, whatever was there before.

A day whose raw rows are gone (pruned by `retention_pruning`) keeps its aggregate untouched; the run says
so in the log and in the `days_kept_without_raw_rows` metadata.

Data-loss guard: a day whose raw rows are only PARTLY there must not be re-aggregated either (late rows that
arrive for a pruned day would otherwise replace the day's aggregate with the rollup of the late rows
alone). So a day that already has an aggregate keeps it when the day is older than the raw retention cutoff
(today - metricsRetentionDays for samples; today - `usage_event_retention_days` for events, if set), or when
its raw totals are LOWER than the aggregate's (reqCount/errCount; the total categorized event count). Such
days are logged and listed in the `days_kept_raw_incomplete` metadata, and left out of the reconciliation
(they cannot reconcile: their raw rows are incomplete). "today" is the wall clock's UTC day unless the
run config sets `today` (replays and tests).

Locks: each rollup's write transaction is wrapped in the advisory lock
`pg_advisory_lock(hashtext('erp_pipelines:<table>'))` (rollups/sql.py, taken just before the transaction
and released just after it, so the snapshot starts after the wait), so two runs writing the same table
(overlapping backfills, a backfill and the nightly run) serialize: the second waits for the first to
commit, then rewrites the days with what is committed, and the result equals one run. That one wait is not
bounded by `lock_timeout` (the other run may legitimately hold it for a whole backfill) but by
`statement_timeout`. Retention takes the same locks (transaction-level, with `lock_timeout`) before it
reconciles and deletes.

Errors: a lost connection (server restart, terminated backend) becomes `DatabaseUnavailable` (the Failure
is retryable, and the asset's RetryPolicy retries it; the transaction was rolled back, so nothing was
half-written); a missing privilege becomes an ErpPipelinesError naming the GRANT to run (not retried).
"""

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import psycopg
from pydantic import Field

from erp_pipelines.errors import DatabaseUnavailable, ErpPipelinesError, is_connection_lost
from erp_pipelines.partitions import DAILY_PARTITIONS, day_bounds, days_in_window, to_naive_utc
from erp_pipelines.resources import ErpDatabase
from erp_pipelines.rollups import checks, daily_report, sql

GROUP = "rollups"
ERP_DB_POOL = "erp_db"
# What every asset of the domain declares: a lost connection (DatabaseUnavailable) is retried with backoff;
# user errors are Failure(allow_retries=False) and are not.
RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

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


class MetricRollupConfig(dg.Config):
    today: str | None = Field(
        default=None,
        description="The UTC day (YYYY-MM-DD) taken as 'today' by the data-loss guard's retention cutoff. "
        "Unset (the default): the wall clock. For replays and tests only.",
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


# Privileges each writer needs, per table: named in the error when the role lacks one (docs/privileges.md).
ROLLUP_PRIVILEGES = {
    "system_metric_samples": "SELECT",
    "client_usage_events": "SELECT",
    "system_health_config": "SELECT",
    "system_metric_daily": "SELECT, INSERT, UPDATE, DELETE",
    "client_daily_usage": "SELECT, INSERT, UPDATE, DELETE",
}
_PERMISSION_DENIED = re.compile(r'permission denied for (table|relation|schema|sequence|view) "?([\w.$]+)"?')


class MissingGrant(ErpPipelinesError):
    """The database role lacks a privilege; the message names the GRANT that fixes it."""


def missing_grant(
    exc: psycopg.Error, role: str | None, purpose: str, erp_db: ErpDatabase, needs: Mapping[str, str]
) -> MissingGrant:
    message = (exc.diag.message_primary or str(exc)).strip()
    who = role or "<role>"
    found = _PERMISSION_DENIED.search(message)
    if found is None:
        grant = f"grant {who} the privileges listed in docs/privileges.md"
        where = f"database role {who} ({erp_db.safe_url()})"
    else:
        kind, name = found.group(1), found.group(2)
        if kind == "schema":
            grant = f"GRANT USAGE ON SCHEMA {name} TO {who}"
        elif kind == "sequence":
            grant = f"GRANT USAGE ON SEQUENCE {name} TO {who}"
        else:
            grant = f"GRANT {needs.get(name.split('.')[-1], 'SELECT')} ON {name} TO {who}"
        where = f"{kind} {erp_db.db_schema}.{name.split('.')[-1]}, database role {who}"
    return MissingGrant(
        f"The database role {who} lacks a privilege {purpose} needs: {message}.",
        where=where,
        fix=f"Run `{grant};` as the table owner (the full list of grants is in docs/privileges.md).",
    )


@contextmanager
def erp_connection(
    erp_db: ErpDatabase, purpose: str, needs: Mapping[str, str] = ROLLUP_PRIVILEGES
) -> Iterator[psycopg.Connection]:
    """A connection whose search_path is the ERP schema, so the SQL constants can stay unqualified.

    A lost connection raises DatabaseUnavailable (retryable) and a missing privilege MissingGrant (naming
    the GRANT); the open transaction, if any, is rolled back by the server either way.
    """
    role: str | None = None
    try:
        with erp_db.connect(purpose) as conn:
            role = conn.info.user
            conn.execute("SELECT set_config('search_path', quote_ident(%s), false)", (erp_db.db_schema,))
            conn.commit()
            yield conn
    except psycopg.errors.InsufficientPrivilege as exc:
        raise missing_grant(exc, role, purpose, erp_db, needs) from None
    except psycopg.OperationalError as exc:
        if not is_connection_lost(exc):
            raise
        raise DatabaseUnavailable(
            f"The connection to the ERP database was lost during {purpose} ({str(exc).strip()}); its "
            "transaction was rolled back, so nothing of it was written.",
            where=f"ERP_DATABASE_URL = {erp_db.safe_url()}",
            fix="Nothing, if the server is back: the step is retried. Otherwise check the server.",
        ) from None


@contextmanager
def step_errors() -> Iterator[None]:
    """`errors.user_errors` for this domain's steps: an ErpPipelinesError becomes a dg.Failure carrying its
    message, retryable only for DatabaseUnavailable; chained to the error so the UI shows which one it was."""
    try:
        yield
    except ErpPipelinesError as exc:
        raise dg.Failure(description=str(exc), allow_retries=isinstance(exc, DatabaseUnavailable)) from exc


@contextmanager
def write_transaction(conn: psycopg.Connection, table: str) -> Iterator[None]:
    """The one REPEATABLE READ transaction writing `table`, once no other writer of it is left (module
    docstring). The wait is unbounded by lock_timeout (statement_timeout still applies)."""
    key = {"lock_key": sql.LOCK_KEY_PREFIX + table}
    with conn.transaction():
        conn.execute("SELECT set_config('lock_timeout', '0', true)")  # this short transaction only
        conn.execute(sql.ADVISORY_LOCK, key)
    try:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            yield
    finally:
        if not conn.broken and not conn.closed:
            conn.isolation_level = None
            with conn.transaction():
                conn.execute(sql.ADVISORY_UNLOCK, key)


def guard_today(override: str | None) -> date:
    """'today' for the data-loss guard and retention: the override (YYYY-MM-DD) or the wall clock's UTC day."""
    if override is None:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(override)
    except ValueError:
        raise ErpPipelinesError(
            f"today {override!r} is not a date.",
            where="run config `today`",
            fix="Use YYYY-MM-DD, or leave it unset to use the current UTC day.",
        ) from None


READ_METRICS_RETENTION = 'SELECT "metricsRetentionDays" FROM system_health_config WHERE id = 1'


def _samples_cutoff(conn: psycopg.Connection, today: date) -> date | None:
    """today - metricsRetentionDays (days before it may have lost samples), None if not configured."""
    try:
        with conn.transaction():
            row = conn.execute(READ_METRICS_RETENTION).fetchone()
    except psycopg.errors.UndefinedTable:
        return None
    days = row[0] if row else None
    return today - timedelta(days=days) if isinstance(days, int) and days > 0 else None


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
    retry_policy=RETRY_POLICY,
    freshness_policy=checks.ROLLUP_FRESHNESS_POLICY,
    check_specs=[
        daily_report.daily_check_spec(
            METRIC_RECONCILIATION_CHECK,
            "system_metric_daily",
            blocking=True,
            description="Per day: reqCount/errCount equal the sums of its samples; blocks retention_pruning "
            "in the same run when they do not.",
        ),
        daily_report.daily_check_spec(
            METRIC_HEALTH_CHECK,
            "system_metric_daily",
            additional_deps=["system_health_config"],
            description="Per day: avgLatencyMs and avgErrorRatePct against system_health_config.thresholds "
            "(latency, errorRate): WARN at warning, ERROR at critical.",
        ),
    ],
)
def system_metric_daily(
    context: dg.AssetExecutionContext, config: MetricRollupConfig, erp_db: ErpDatabase
) -> Iterator[daily_report.ReportEvent]:
    """One row per UTC day of `system_metric_samples`, request-weighted (formula and why in sql.py)."""
    with step_errors():
        yield from _roll_up_metrics(context, config, erp_db)


def _roll_up_metrics(
    context: dg.AssetExecutionContext, config: MetricRollupConfig, erp_db: ErpDatabase
) -> Iterator[daily_report.ReportEvent]:
    days, window_start, window_end = _window(context)
    now = _now()
    today = guard_today(config.today)
    inserted = updated = samples_read = 0
    kept: list[str] = []
    kept_incomplete: dict[str, str] = {}
    mismatched: dict[date, str] = {}
    fingerprints: dict[str, dict[str, int]] = {}
    day_written: dict[date, int] = {}
    days_with_raw = 0
    with erp_connection(erp_db, "rollup:system_metric_daily") as conn:
        cutoff = _samples_cutoff(conn, today)
        with write_transaction(conn, "system_metric_daily"):
            for day in days:
                day_start, day_end = day_bounds(day)
                params = {"day_start": day_start, "day_end": day_end, "now": now}
                # The data-loss guard only concerns a day that already has an aggregate (one index
                # lookup); a new day, the nightly case, is not read twice.
                has_aggregate = conn.execute(sql.METRIC_DAY_ROW, {"day_start": day_start}).fetchone() is not None
                if has_aggregate:
                    samples, req, err, _min_id, max_id, agg_req, agg_err, _ = conn.execute(
                        sql.METRIC_DAY_RECONCILE, params
                    ).fetchone()
                if has_aggregate and samples > 0:
                    why = _incomplete_reason(
                        day, cutoff, [("reqCount", req, agg_req), ("errCount", err, agg_err)]
                    )
                    if why:
                        kept_incomplete[str(day)] = why
                        fingerprints[str(day)] = {"rows": int(samples), "max_id": int(max_id or 0)}
                        samples_read += samples
                        continue
                written = conn.execute(sql.METRIC_DAY_UPSERT, params).fetchall()
                day_written[day] = len(written)
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
            day_rows = {
                day: conn.execute(sql.METRIC_DAY_ROW, {"day_start": day_bounds(day)[0]}).fetchone()
                for day in days
            }
        thresholds = _read_thresholds(conn)
    if kept:
        context.log.info(
            f"{len(kept)} day(s) have no samples left (pruned) but keep their aggregate unchanged: "
            + ", ".join(kept[:20])
            + (" ..." if len(kept) > 20 else "")
        )
    _log_incomplete(context, "system_metric_daily", kept_incomplete)
    context.log.info(
        f"system_metric_daily {days[0]}..{days[-1]}: {samples_read} samples read, {inserted} rows inserted, "
        f"{updated} updated, {len(kept)} day(s) kept without raw rows."
    )
    kept_reason = {**{d: "no samples left (pruned)" for d in kept}, **kept_incomplete}
    figures = [
        daily_report.DayFigures(
            day=day,
            rows_written=day_written.get(day, 0),
            raw_rows_read=fingerprints[str(day)]["rows"],
            figures={
                **dict(zip(daily_report.METRIC_FIGURE_NAMES, day_rows[day] or (), strict=False)),
                "samples": fingerprints[str(day)]["rows"],
                "samples_read": fingerprints[str(day)]["rows"],
            },
            row_count=0 if day_rows[day] is None else 1,
            fingerprint=(fingerprints[str(day)]["rows"], fingerprints[str(day)]["max_id"]),
            kept=kept_reason.get(str(day)),
        )
        for day in days
    ]
    yield from daily_report.report(
        context,
        "system_metric_daily",
        run_metadata={
            "dagster/row_count": dg.MetadataValue.int(int(row_count)),
            "rows_written": dg.MetadataValue.int(inserted + updated),
            "rows_inserted": dg.MetadataValue.int(inserted),
            "rows_updated": dg.MetadataValue.int(updated),
            "samples_read": dg.MetadataValue.int(int(samples_read)),
            "days_in_window": dg.MetadataValue.int(len(days)),
            "days_with_raw_rows": dg.MetadataValue.int(days_with_raw),
            "days_kept_without_raw_rows": dg.MetadataValue.int(len(kept)),
            "days_kept_raw_incomplete": dg.MetadataValue.json(kept_incomplete),
        },
        days=figures,
        checks={
            METRIC_RECONCILIATION_CHECK: [
                checks.reconciliation_day(
                    f.day, mismatched.get(f.day), f.raw_rows_read, kept_incomplete.get(str(f.day))
                )
                for f in figures
            ],
            METRIC_HEALTH_CHECK: [checks.health_day(day, day_rows[day], thresholds) for day in days],
        },
        day_extra={"dagster/table_name": _table_name(erp_db, "system_metric_daily")},
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
    retry_policy=RETRY_POLICY,
    freshness_policy=checks.ROLLUP_FRESHNESS_POLICY,
    check_specs=[
        daily_report.daily_check_spec(
            USAGE_RECONCILIATION_CHECK,
            "client_daily_usage",
            blocking=True,
            description="Per day and (client, module), the four counts equal the categorized raw events "
            "with a module_id; blocks retention_pruning in the same run when they do not.",
        ),
        daily_report.daily_check_spec(
            USAGE_NULL_MODULE_CHECK,
            "client_daily_usage",
            description="Per day: usage events without a module_id cannot enter client_daily_usage's key.",
        ),
    ],
)
def client_daily_usage(
    context: dg.AssetExecutionContext, config: UsageRollupConfig, erp_db: ErpDatabase
) -> Iterator[daily_report.ReportEvent]:
    """One row per UTC day, client and module with events: counts per category and active users."""
    with step_errors():
        yield from _roll_up_usage(context, config, erp_db)


def _roll_up_usage(
    context: dg.AssetExecutionContext, config: UsageRollupConfig, erp_db: ErpDatabase
) -> Iterator[daily_report.ReportEvent]:
    categories = category_params(config.event_categories)
    today = guard_today(config.today)
    events_cutoff = (
        today - timedelta(days=config.usage_event_retention_days)
        if config.usage_event_retention_days
        else None
    )
    kept_incomplete: dict[str, str] = {}
    categorized = {t for types in categories.values() for t in types}
    days, _window_start, _window_end = _window(context)
    now = _now()
    totals = {"rollup_rows": 0, "inserted": 0, "updated": 0, "deleted": 0}
    events_read = null_module = 0
    uncategorized: dict[str, int] = {}
    kept: list[str] = []
    mismatched: dict[date, str] = {}
    fingerprints: dict[str, dict[str, int]] = {}
    day_written: dict[date, int] = {}
    day_null_module: dict[date, int] = {}
    day_uncategorized: dict[date, int] = {}
    day_figures: dict[date, tuple] = {}
    days_with_raw = 0
    with erp_connection(erp_db, "rollup:client_daily_usage") as conn:
        with write_transaction(conn, "client_daily_usage"):
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
                day_null_module[day] = int(sum(nm for _, _, nm, _ in stats))
                day_uncategorized[day] = int(sum(n for t, n, _, _ in stats if t not in categorized))
                if day_events > 0:
                    # The day's categorized events with a module, from the stats just read (no second scan).
                    raw_total = sum(n - nm for t, n, nm, _ in stats if t in categorized)
                    agg_total, agg_rows = conn.execute(sql.USAGE_DAY_AGGREGATE_TOTALS, params).fetchone()
                    why = (
                        _incomplete_reason(day, events_cutoff, [("categorized events", raw_total, agg_total)])
                        if agg_rows
                        else None
                    )
                    if why:
                        kept_incomplete[str(day)] = why
                        day_figures[day] = conn.execute(daily_report.USAGE_DAY_FIGURES, params).fetchone()
                        continue
                null_module += sum(nm for _, _, nm, _ in stats)
                for event_type, n, _, _ in stats:
                    if event_type not in categorized:
                        uncategorized[event_type] = uncategorized.get(event_type, 0) + int(n)
                rollup_rows, ins, upd, dele = conn.execute(sql.USAGE_DAY_REPLACE, params).fetchone()
                for key, value in zip(totals, (rollup_rows, ins, upd, dele), strict=True):
                    totals[key] += int(value)
                day_written[day] = int(ins) + int(upd)
                day_figures[day] = conn.execute(daily_report.USAGE_DAY_FIGURES, params).fetchone()
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
    _log_incomplete(context, "client_daily_usage", kept_incomplete)
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
    kept_reason = {**{d: "no usage events left (pruned)" for d in kept}, **kept_incomplete}
    figures = []
    for day in days:
        *numbers, aggregate_rows = day_figures[day]
        figures.append(
            daily_report.DayFigures(
                day=day,
                rows_written=day_written.get(day, 0),
                raw_rows_read=fingerprints[str(day)]["rows"],
                figures={
                    **dict(zip(daily_report.USAGE_FIGURE_NAMES, numbers, strict=True)),
                    "events_read": fingerprints[str(day)]["rows"],
                    "null_module_events": day_null_module[day],
                    "uncategorized_events": day_uncategorized[day],
                },
                row_count=int(aggregate_rows),
                fingerprint=(fingerprints[str(day)]["rows"], fingerprints[str(day)]["max_id"]),
                kept=kept_reason.get(str(day)),
            )
        )
    yield from daily_report.report(
        context,
        "client_daily_usage",
        run_metadata={
            "dagster/row_count": dg.MetadataValue.int(int(row_count)),
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
        },
        days=figures,
        checks={
            USAGE_RECONCILIATION_CHECK: [
                checks.reconciliation_day(
                    f.day, mismatched.get(f.day), f.raw_rows_read, kept_incomplete.get(str(f.day))
                )
                for f in figures
            ],
            USAGE_NULL_MODULE_CHECK: [checks.null_module_day(f.day, day_null_module[f.day]) for f in figures],
        },
        day_extra={"dagster/table_name": _table_name(erp_db, "client_daily_usage")},
    )


def _incomplete_reason(
    day: date, cutoff: date | None, totals: list[tuple[str, int, int | None]]
) -> str | None:
    """Why a day that has an aggregate must keep it (its raw rows may be incomplete), or None."""
    if cutoff is not None and day < cutoff:
        return f"older than the raw retention cutoff {cutoff}: its raw rows may have been pruned"
    for name, raw, aggregate in totals:
        if aggregate is not None and raw < aggregate:
            return f"raw {name} {raw} < aggregate {aggregate}: raw rows are missing"
    return None


def _log_incomplete(context: dg.AssetExecutionContext, table: str, kept: dict[str, str]) -> None:
    if kept:
        context.log.warning(
            f"{table}: {len(kept)} day(s) keep their aggregate because their raw rows may be incomplete "
            "(re-aggregating would lose the pruned rows): "
            + "; ".join(f"{d}: {why}" for d, why in sorted(kept.items())[:20])
        )


ROLLUP_ASSETS = (system_metric_daily, client_daily_usage)
# Which raw table feeds which rollup (late-data sensor, retention).
RAW_TABLE_OF = {"system_metric_daily": "system_metric_samples", "client_daily_usage": "client_usage_events"}
