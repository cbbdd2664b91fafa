"""Generated hostile ERP write streams against the whole automation, judged by an audit trail of our own.

Hypothesis draws streams of ERP writes over a few old days of both raw tables: inserts (NULL modules,
the first and last microsecond of a day, the year 20000, +/-infinity), updates that move rows between days,
deletes, each optionally with the capture triggers bypassed (`session_replication_role = replica`), and a
dropped own schema; interleaved with rollups of a day, single-run backfills, retention, a `pipeline_state`
run and ticks of the real `late_data_sensor` (evaluated with `dg.build_sensor_context` on a real instance,
whose requests are executed as the daemon would). A rollup stopped by an aggregate without a ledger entry
is answered the documented way: the same run again with `adopt_existing_aggregates: true`.

The oracle is a row-level audit trigger in a test-only schema (support/audit.py), not our ledger:
1. after every step, every raw row retention deleted has a key and its day's aggregate equals the plain-Python
   reference (support/reference.py) over exactly the rows retention deleted from that day;
2. once the automation has run (pipeline_state, retention, the sensor's refreshes, until nothing is asked),
   every materialized day that is not pruned has the aggregate the reference computes from its raw rows;
3. nothing fails forever: in that settling, every run succeeds (after at most one adoption) and the sensor
   ends up asking for nothing.
Examples: support/generated.py `bounded` (CI small; ERP_HYPOTHESIS_PROFILE=nightly for a longer run). Every
example it found is kept below as a named regression test.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from erp_pipelines import own_schema
from erp_pipelines.automation.sensors import late_data_sensor
from erp_pipelines.schema.own_schema_asset import pipeline_state
from erp_pipelines_tests.support.audit import install_audit, reset_audit, retention_deletes
from erp_pipelines_tests.support.capture import install_capture, run_request
from erp_pipelines_tests.support.erp_data import add_clients, set_health_config
from erp_pipelines_tests.support.generated import bounded
from erp_pipelines_tests.support.instances import fresh_instance
from erp_pipelines_tests.support.reference import metric_reference, usage_reference
from erp_pipelines_tests.support.rollups import (
    ago,
    metric_rows,
    metrics_equal,
    prune,
    roll_up,
    roll_up_range,
    usage_rows,
)

DAYS = [ago(24), ago(18), ago(13), ago(9)]  # all older than the 7-day retentions
RETENTION = {"usage_event_retention_days": 7, "batch_size": 2}
EVENT_TYPES = ["view", "edit", "create", "delete", "login"]
ADOPT = {"adopt_existing_aggregates": True}
TABLES = {"events": ("client_usage_events", "occurred_at"), "samples": ("system_metric_samples", "collected_at")}
# where in (or out of) a day a new row is stamped
STAMPS = ["inside", "first_microsecond", "last_microsecond", "year_20000", "infinity", "-infinity"]

day_index = st.integers(0, len(DAYS) - 1)
table = st.sampled_from(sorted(TABLES))
bypass = st.booleans()
actions = st.one_of(
    st.tuples(st.just("insert"), table, day_index, st.integers(1, 3), st.integers(0, 999),
              st.sampled_from(STAMPS), st.booleans(), bypass),
    st.tuples(st.just("update"), table, st.integers(0, 999), day_index, st.booleans(), bypass),
    st.tuples(st.just("delete"), table, st.integers(0, 999), bypass),
    st.tuples(st.just("rollup"), day_index),
    st.tuples(st.just("backfill")),
    st.tuples(st.just("retention")),
    st.tuples(st.just("sensor")),
    st.tuples(st.just("pipeline_state")),
    st.tuples(st.just("drop_own_schema")),
)


def _stamp(day, kind: str, k: int, seed: int) -> datetime | str:
    start = datetime(day.year, day.month, day.day)
    return {
        "inside": start + timedelta(minutes=(seed * 7 + k * 131) % 1440),
        "first_microsecond": start,
        "last_microsecond": start + timedelta(days=1) - timedelta(microseconds=1),
        "year_20000": "20000-01-01 00:00:00",
        "infinity": "infinity",
        "-infinity": "-infinity",
    }[kind]


def _write(conn: psycopg.Connection, bypassed: bool, statement: str, params: tuple) -> None:
    with conn.transaction():
        if bypassed:  # a restore, logical replication: no ordinary trigger fires (the audit one does)
            conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(statement, params)


def _pick(conn: psycopg.Connection, name: str, pick: int) -> int | None:
    ids = [i for (i,) in conn.execute(f"SELECT id FROM {TABLES[name][0]} ORDER BY id").fetchall()]  # noqa: S608
    return ids[pick % len(ids)] if ids else None


def _erp_write(conn: psycopg.Connection, client, action: tuple) -> None:
    kind = action[0]
    if kind == "insert":
        _, name, d, n, seed, stamp, null_key, bypassed = action
        for k in range(n):
            ts = _stamp(DAYS[d], stamp, k, seed)
            if name == "events":
                module = None if null_key and k == 0 else 1 + (seed + k) % 2
                _write(conn, bypassed,
                       "INSERT INTO client_usage_events (client_id, module_id, user_id, event_type, occurred_at) "
                       "VALUES (%s, %s, %s, %s, %s::timestamp)",
                       (client, module, 1 + (seed * 3 + k) % 4, EVENT_TYPES[(seed + k) % 5], ts))
            else:
                _write(conn, bypassed,
                       'INSERT INTO system_metric_samples ("latencyMs", "errorRatePct", "reqCount", "errCount", '
                       "collected_at) VALUES (%s, %s, %s, %s, %s::timestamp)",
                       ((seed + 37 * k) % 1000, float((seed + k) % 7), (seed + k) % 50, (seed + k) % 3, ts))
    elif kind == "update":
        _, name, pick, d, move, bypassed = action
        i = _pick(conn, name, pick)
        if i is None:
            return
        raw, ts_col = TABLES[name]
        if move:  # to another day, same time of day (an out-of-range row lands inside the day)
            _write(conn, bypassed,
                   f"UPDATE {raw} SET {ts_col} = %s::date + coalesce("  # noqa: S608 - fixed names
                   f"CASE WHEN isfinite({ts_col}) AND {ts_col} < '9999-01-01' THEN {ts_col}::time END, '12:00') "
                   "WHERE id = %s", (DAYS[d], i))
        elif name == "events":
            _write(conn, bypassed,
                   "UPDATE client_usage_events SET user_id = coalesce(user_id, 0) % 4 + 1, "
                   "event_type = CASE WHEN event_type = 'edit' THEN 'view' ELSE 'edit' END WHERE id = %s", (i,))
        else:
            _write(conn, bypassed, 'UPDATE system_metric_samples SET "latencyMs" = "latencyMs" + 1 WHERE id = %s',
                   (i,))
    elif kind == "delete":
        _, name, pick, bypassed = action
        i = _pick(conn, name, pick)
        if i is not None:
            _write(conn, bypassed, f"DELETE FROM {TABLES[name][0]} WHERE id = %s", (i,))  # noqa: S608


def _failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    return [e.step_failure_data.error.message for e in result.all_events if e.is_step_failure]


def _adopt_if_stopped(result: dg.ExecuteInProcessResult, again) -> None:
    """A run stopped by an aggregate without a ledger entry is re-run with the documented flag; any other
    failure fails the test."""
    if result.success:
        return
    messages = _failure_messages(result)
    assert messages and all("adopt_existing_aggregates" in m for m in messages), messages
    assert again().success


def _sensor_tick(conn, resources, instance, erp_url) -> int:
    """One late_data_sensor tick, its requests run as the daemon would; the number of requests."""
    tick = late_data_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    for request in tick.run_requests:
        result = run_request(erp_url, instance, request, raise_on_error=False)
        day = datetime.fromisoformat(request.partition_key).date()
        _adopt_if_stopped(result, lambda day=day: roll_up(resources, instance, day, config=ADOPT,
                                                          raise_on_error=False))
    return len(tick.run_requests)


def _automation(conn, action: tuple, resources, instance, erp_url) -> None:
    kind = action[0]
    if kind == "rollup":
        day = DAYS[action[1]]
        result = roll_up(resources, instance, day, raise_on_error=False)
        _adopt_if_stopped(result, lambda: roll_up(resources, instance, day, config=ADOPT, raise_on_error=False))
    elif kind == "backfill":
        result = roll_up_range(resources, instance, DAYS[0], DAYS[-1], config={"days_per_transaction": 2})
        _adopt_if_stopped(result, lambda: roll_up_range(resources, instance, DAYS[0], DAYS[-1],
                                                        config={"days_per_transaction": 2, **ADOPT}))
    elif kind == "retention":
        assert prune(resources, instance, **RETENTION).success
    elif kind == "sensor":
        _sensor_tick(conn, resources, instance, erp_url)
    elif kind == "pipeline_state":
        assert dg.materialize([pipeline_state], resources=resources, instance=instance).success
    elif kind == "drop_own_schema":
        conn.execute(f"DROP SCHEMA IF EXISTS {own_schema.own_schema_name()} CASCADE")


def _raw(conn: psycopg.Connection, name: str) -> list[tuple]:
    if name == "events":
        return conn.execute(
            "SELECT client_id, module_id, user_id, event_type, occurred_at FROM client_usage_events "
            "WHERE isfinite(occurred_at) AND occurred_at < '9999-01-01'").fetchall()
    return conn.execute(
        'SELECT "latencyMs", "errorRatePct", "reqCount", "errCount", collected_at FROM system_metric_samples '
        "WHERE isfinite(collected_at) AND collected_at < '9999-01-01'").fetchall()


def assert_retention_deleted_only_held_rows(conn: psycopg.Connection) -> set:
    """Invariant 1 (the audit trail's retention deletes); returns the (table, day) pairs retention pruned."""
    deleted = retention_deletes(conn)
    usage, metrics = usage_rows(conn), metric_rows(conn)
    for (raw_table, day), rows in deleted.items():
        assert day is not None, f"{raw_table}: retention deleted rows of no day: {rows}"
        if raw_table == "client_usage_events":
            assert all(r[0] is not None and r[1] is not None for r in rows), f"{day}: a NULL-key event pruned"
            held = {k: v for k, v in usage.items() if k[0] == day}
            assert held == usage_reference(rows), f"{day}: the aggregate does not hold the pruned events"
        else:
            expected = metric_reference(rows)[day]
            assert day in metrics and metrics_equal(metrics[day], expected), (day, metrics.get(day), expected)
    return set(deleted)


def _pruned_days(conn: psycopg.Connection, raw_table: str) -> set:
    own = own_schema.own_schema_name()
    if not conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{own}.pruned_days",)).fetchone()[0]:
        return set()
    return {d for (d,) in conn.execute(
        f"SELECT day FROM {own}.pruned_days WHERE raw_table = %s", (raw_table,)).fetchall()}  # noqa: S608


def settle_and_assert_references(conn, resources, instance, erp_url) -> None:
    """Invariants 2 and 3: the automation runs until it asks for nothing; then unpruned days are right."""
    assert dg.materialize([pipeline_state], resources=resources, instance=instance).success
    for _ in range(4):
        assert prune(resources, instance, **RETENTION).success
        if _sensor_tick(conn, resources, instance, erp_url) == 0:
            break
    else:
        raise AssertionError("the late-data sensor still asks for refreshes after four rounds")
    pruned = assert_retention_deleted_only_held_rows(conn)
    usage, metrics = usage_rows(conn), metric_rows(conn)
    for name, (raw_table, _ts) in TABLES.items():
        done = _pruned_days(conn, raw_table) | {d for t, d in pruned if t == raw_table}
        rollup = "client_daily_usage" if name == "events" else "system_metric_daily"
        materialized = instance.get_materialized_partitions(dg.AssetKey(rollup))
        rows = _raw(conn, name)
        for day in DAYS:
            if day in done or str(day) not in materialized:
                continue
            mine = [r for r in rows if r[4].date() == day]
            if name == "events":
                assert {k: v for k, v in usage.items() if k[0] == day} == usage_reference(mine), day
            else:
                expected = metric_reference(mine).get(day)
                actual = metrics.get(day)
                assert (actual is None and expected is None) or metrics_equal(actual, expected), (day, actual,
                                                                                                   expected)


RESET = (
    "TRUNCATE client_usage_events, system_metric_samples, client_daily_usage, system_metric_daily",
    "DROP SCHEMA IF EXISTS {own} CASCADE",
)


def run_stream(conn, client, steps: list[tuple], resources, erp_url) -> None:
    for statement in RESET:
        conn.execute(statement.replace("{own}", own_schema.own_schema_name()))
    install_capture(conn)
    reset_audit(conn)
    with fresh_instance() as instance:
        for action in steps:
            if action[0] in ("insert", "update", "delete"):
                _erp_write(conn, client, action)
            else:
                _automation(conn, action, resources, instance, erp_url)
            assert_retention_deleted_only_held_rows(conn)
        settle_and_assert_references(conn, resources, instance, erp_url)


@pytest.fixture
def stream_db(erp_tables):
    conn = erp_tables
    set_health_config(conn, metrics_days=7, aggregate_days=365)
    install_audit(conn)
    return conn, add_clients(conn, 1)[0]


@pytest.mark.slow
def test_generated_write_streams_lose_no_raw_row_and_settle_to_the_reference(stream_db, resources, erp_url):
    conn, client = stream_db

    @bounded(ci=3, nightly_examples=60)
    @given(steps=st.lists(actions, min_size=3, max_size=9))
    def run(steps: list[tuple]) -> None:
        run_stream(conn, client, steps, resources, erp_url)

    run()


# -- examples found by the generator (and the hostile paths of issue 18), kept as named regressions ---------

def test_stream_late_null_module_events_then_retention_keeps_them(stream_db, resources, erp_url):
    conn, client = stream_db
    run_stream(conn, client, [
        ("insert", "events", 0, 3, 1, "inside", False, False),
        ("rollup", 0),
        ("insert", "events", 0, 2, 5, "inside", True, False),
        ("sensor",),
        ("retention",),
    ], resources, erp_url)
    assert conn.execute("SELECT count(*) FROM client_usage_events WHERE module_id IS NULL").fetchone()[0] == 1


def test_stream_dropped_own_schema_after_pruning_then_late_rows_and_bypassed_writes(stream_db, resources, erp_url):
    conn, client = stream_db
    run_stream(conn, client, [
        ("insert", "events", 1, 3, 2, "first_microsecond", False, False),
        ("insert", "samples", 1, 2, 3, "last_microsecond", False, False),
        ("backfill",),
        ("retention",),
        ("drop_own_schema",),
        ("insert", "events", 1, 3, 2, "first_microsecond", False, True),  # the pruned rows again, bypassed
        ("insert", "samples", 2, 1, 9, "year_20000", False, False),
        ("rollup", 1),
        ("retention",),
    ], resources, erp_url)
