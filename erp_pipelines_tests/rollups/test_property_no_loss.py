"""Property: whatever the app writes and whenever rollups, refreshes and retention run, no raw row is lost.

Hypothesis drives random interleavings over a few weeks of days: the app inserts (late rows included),
updates (a value, or the timestamp to another day) and deletes raw rows; rollups of one day, single-run
backfills in chunks, and retention run in between (real Dagster, real PostgreSQL). A shadow log in the test
knows every raw row the app wrote. After every step:

1. every raw row the app wrote and did not delete is either still in the raw table, or its day was pruned
   (`pruned_days`) together with every other row of that day, and the day's aggregate still equals the
   independent reference (reference.py) computed over exactly the rows that were pruned;
2. the aggregates of unpruned days not touched by the app since their last rollup equal the reference
   over their current raw rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from erp_pipelines import own_schema
from erp_pipelines_tests.support.erp_data import add_clients, set_health_config
from erp_pipelines_tests.support.generated import bounded
from erp_pipelines_tests.support.instances import fresh_instance
from erp_pipelines_tests.support.ledger import pruned_days
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

DAYS = [ago(25), ago(22), ago(20), ago(16), ago(12), ago(9)]  # all older than the 7-day retentions
RETENTION = {"usage_event_retention_days": 7, "batch_size": 3}
EVENT_TYPES = ["view", "edit", "create", "delete", "login"]

day_index = st.integers(0, len(DAYS) - 1)
actions = st.one_of(
    st.tuples(st.just("insert"), st.sampled_from(["events", "samples"]), day_index, st.integers(1, 4),
              st.integers(0, 10_000)),
    st.tuples(st.just("update"), st.sampled_from(["events", "samples"]), st.integers(0, 10_000), day_index,
              st.booleans()),
    st.tuples(st.just("delete"), st.sampled_from(["events", "samples"]), st.integers(0, 10_000)),
    st.tuples(st.just("rollup"), day_index),
    st.tuples(st.just("backfill")),
    st.tuples(st.just("retention")),
)


@dataclass
class Shadow:
    """What the app wrote: id -> row, per raw table; what retention took, per table and day."""

    events: dict[int, tuple] = field(default_factory=dict)  # id -> (client, module, user, type, ts)
    samples: dict[int, tuple] = field(default_factory=dict)  # id -> (latency, rate, req, err, ts)
    pruned: dict[str, dict[date, dict[int, tuple]]] = field(default_factory=lambda: {"events": {}, "samples": {}})
    dirty: set[date] = field(default_factory=set)  # days the app touched since their last rollup
    rolled: set[date] = field(default_factory=set)

    def rows(self, table: str) -> dict[int, tuple]:
        return self.events if table == "events" else self.samples


RAW = {"events": ("client_usage_events", "occurred_at"), "samples": ("system_metric_samples", "collected_at")}


def _present(conn: psycopg.Connection, table: str) -> set[int]:
    name = RAW[table][0]
    return {i for (i,) in conn.execute(f"SELECT id FROM {name}").fetchall()}  # noqa: S608 - fixed names


def _apply(conn: psycopg.Connection, shadow: Shadow, client, action: tuple, resources, instance) -> None:
    kind = action[0]
    if kind == "insert":
        _, table, d, n, seed = action
        day = DAYS[d]
        for k in range(n):
            ts = datetime(day.year, day.month, day.day) + timedelta(minutes=(seed * 7 + k * 131) % 1440)
            if table == "events":
                row = (client, 1 + (seed + k) % 2, 1 + (seed * 3 + k) % 4, EVENT_TYPES[(seed + k) % 5], ts)
                (i,) = conn.execute(
                    "INSERT INTO client_usage_events (client_id, module_id, user_id, event_type, occurred_at) "
                    "VALUES (%s, %s, %s, %s, %s) RETURNING id", row).fetchone()
            else:
                row = ((seed + 37 * k) % 1000, float((seed + k) % 7), (seed + k) % 50, (seed + k) % 3, ts)
                (i,) = conn.execute(
                    'INSERT INTO system_metric_samples ("latencyMs", "errorRatePct", "reqCount", "errCount", '
                    "collected_at) VALUES (%s, %s, %s, %s, %s) RETURNING id", row).fetchone()
            shadow.rows(table)[i] = row
        shadow.dirty.add(day)
    elif kind in ("update", "delete"):
        table, pick = action[1], action[2]
        present = sorted(set(shadow.rows(table)) & _present(conn, table))
        if not present:
            return
        i = present[pick % len(present)]
        old = shadow.rows(table)[i]
        shadow.dirty.add(old[4].date())
        name, ts_col = RAW[table]
        if kind == "delete":
            conn.execute(f"DELETE FROM {name} WHERE id = %s", (i,))  # noqa: S608 - fixed names
            del shadow.rows(table)[i]
            return
        _, _, _, d, move = action
        if move:  # a row moved to another day
            new_ts = datetime.combine(DAYS[d], old[4].time())
            conn.execute(f"UPDATE {name} SET {ts_col} = %s WHERE id = %s", (new_ts, i))  # noqa: S608
            new = (*old[:4], new_ts)
            shadow.dirty.add(DAYS[d])
        elif table == "events":
            new = (old[0], old[1], old[2] % 4 + 1, "edit" if old[3] != "edit" else "view", old[4])
            conn.execute("UPDATE client_usage_events SET user_id = %s, event_type = %s WHERE id = %s",
                         (new[2], new[3], i))
        else:
            new = (old[0] + 1, old[1], old[2], old[3], old[4])
            conn.execute('UPDATE system_metric_samples SET "latencyMs" = %s WHERE id = %s', (new[0], i))
        shadow.rows(table)[i] = new
    elif kind == "rollup":
        day = DAYS[action[1]]
        roll_up(resources, instance, day)
        shadow.dirty.discard(day)
        shadow.rolled.add(day)
    elif kind == "backfill":
        assert roll_up_range(resources, instance, DAYS[0], DAYS[-1], config={"days_per_transaction": 3}).success
        shadow.dirty.clear()
        shadow.rolled.update(DAYS)
    elif kind == "retention":
        assert prune(resources, instance, **RETENTION).success
        for table in ("events", "samples"):
            gone = {i: r for i, r in shadow.rows(table).items() if i not in _present(conn, table)}
            for i, row in gone.items():
                shadow.pruned[table].setdefault(row[4].date(), {})[i] = row
                del shadow.rows(table)[i]


def _assert_no_loss(conn: psycopg.Connection, shadow: Shadow) -> None:
    for table in ("events", "samples"):
        present = _present(conn, table)
        missing = set(shadow.rows(table)) - present
        assert not missing, f"{table}: rows {sorted(missing)} vanished without being pruned with their day"
        recorded = pruned_days(conn, RAW[table][0])
        for day, rows in shadow.pruned[table].items():
            assert day in recorded, f"{table} {day}: rows deleted but the day is not in pruned_days"
            assert recorded[day] == len(rows)
            # the pruned day was pruned whole: no row of it older than the prune is left (late rows may be)
            if table == "events":
                assert usage_rows(conn, day) == {k: v for k, v in usage_reference(list(rows.values())).items()
                                                 if k[0] == day}, f"events {day}: aggregate lost pruned rows"
            else:
                expected = metric_reference(list(rows.values()))[day]
                assert metrics_equal(metric_rows(conn)[day], expected), f"samples {day}"
    pruned_any = set(shadow.pruned["events"]) | set(shadow.pruned["samples"])
    for day in shadow.rolled - shadow.dirty - pruned_any:
        events = [r for r in shadow.events.values() if r[4].date() == day]
        assert usage_rows(conn, day) == {k: v for k, v in usage_reference(events).items() if k[0] == day}, day
        samples = [r for r in shadow.samples.values() if r[4].date() == day]
        expected = metric_reference(samples).get(day)
        actual = metric_rows(conn).get(day)
        assert (actual is None and expected is None) or metrics_equal(actual, expected), (day, actual, expected)


RESET = (
    "TRUNCATE client_usage_events, system_metric_samples, client_daily_usage, system_metric_daily",
    "TRUNCATE {own}.rollup_ledger, {own}.pruned_days, {own}.invalidations",
)


@pytest.mark.slow
def test_no_raw_row_is_ever_lost_whatever_the_interleaving(erp_tables, resources):
    conn = erp_tables
    set_health_config(conn, metrics_days=7, aggregate_days=365)
    client = add_clients(conn, 1)[0]
    own_schema.install(conn, "public")
    own = own_schema.own_schema_name()

    @bounded(8, 80)
    @given(steps=st.lists(actions, min_size=4, max_size=14))
    def run(steps: list[tuple]) -> None:
        for statement in RESET:
            conn.execute(statement.replace("{own}", own))
        shadow = Shadow()
        with fresh_instance() as instance:
            for action in steps:
                _apply(conn, shadow, client, action, resources, instance)
                _assert_no_loss(conn, shadow)

    run()
