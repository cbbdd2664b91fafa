"""Concurrency, on the real server with real Dagster runs and real child processes.

(a) A writer process inserts usage events and metric samples as fast as it can (bounded by a row count and a
    safety time limit), including late rows for past days, while the rollups run for a range and retention
    runs. Every raw row ever inserted (the writer logs each committed row with its id) is afterwards either
    still present or counted in its day's aggregate; re-running what the late-data sensor asks for makes
    every aggregate equal the reference over every row ever inserted; no run fails, nothing deadlocks.
(b) Two overlapping single-run backfills started at once, and a backfill overlapping the nightly run: they
    serialize (the rollups' per-table advisory lock) and the result equals one run. The overlap is forced:
    the test holds a row lock on an aggregate row of a day both runs write, so the first run stops half-way
    through its transaction while the second one is already waiting; then it lets go.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from erp_pipelines.automation.sensors import late_data_sensor
from erp_pipelines.defs_factory import build_defs
from erp_pipelines.resources import ErpDatabase
from erp_pipelines_tests.support.aggregates import aggregates, assert_equals_reference
from erp_pipelines_tests.support.capture import install_capture
from erp_pipelines_tests.support.erp_data import (
    add_clients,
    add_modules,
    create_erp_tables,
    insert_events,
    insert_samples,
    set_health_config,
)
from erp_pipelines_tests.support.processes import SAFETY_TIMEOUT_S, finish, spawn
from erp_pipelines_tests.support.raw_rows import all_raw, at, day_events, day_samples
from erp_pipelines_tests.support.runs import prune, rollup_range

TODAY = datetime.now(UTC).date()


def ago(days: int) -> date:
    return TODAY - timedelta(days=days)


# ----------------------------------------------------------------------------------------------------------
# (a) a writer at full speed

WRITER = """
import json, sys, time, uuid
from datetime import datetime
import psycopg
url, log_path, max_rows, days = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split(",")
clients = [uuid.UUID(int=i + 1) for i in range(3)]
types = ["view", "create", "edit", "delete", "open", "login"]
deadline = time.monotonic() + float(sys.argv[5])  # a safety bound, not a measurement
written = 0
with psycopg.connect(url, autocommit=True) as conn, open(log_path, "w") as log:
    i = 0
    while written < max_rows and time.monotonic() < deadline:
        day = datetime.fromisoformat(days[i % len(days)])
        at = day.replace(hour=i % 24, minute=(i * 7) % 60, second=i % 60)
        event = (clients[i % 3], 1 + i % 3, i % 5 or None, types[i % len(types)], at)
        sample = (50 + (i * 31) % 500, float(i % 4), i % 50, i % 3, at)
        with conn.transaction():  # both rows commit together, then get logged
            eid = conn.execute(
                "INSERT INTO client_usage_events (client_id, module_id, user_id, event_type, occurred_at) "
                "VALUES (%s, %s, %s, %s, %s) RETURNING id", event).fetchone()[0]
            sid = conn.execute(
                'INSERT INTO system_metric_samples ("latencyMs", "errorRatePct", "reqCount", "errCount", '
                "collected_at) VALUES (%s, %s, %s, %s, %s) RETURNING id", sample).fetchone()[0]
        log.write(json.dumps({"event": [eid, str(event[0]), *event[1:4], at.isoformat()],
                              "sample": [sid, *sample[:4], at.isoformat()]}) + "\\n")
        log.flush()
        written += 2
        i += 1
print("WROTE", written)
"""


def read_writer_log(path: Path) -> tuple[dict[int, tuple], dict[int, tuple]]:
    events: dict[int, tuple] = {}
    samples: dict[int, tuple] = {}
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        eid, client, module, user, etype, ts = entry["event"]
        events[eid] = (uuid.UUID(client), module, user, etype, datetime.fromisoformat(ts))
        sid, latency, rate, req, err, ts = entry["sample"]
        samples[sid] = (latency, rate, req, err, datetime.fromisoformat(ts))
    return events, samples


def wait_for_lines(path: Path, n: int, proc) -> None:
    deadline = time.monotonic() + SAFETY_TIMEOUT_S
    while not path.exists() or len(path.read_text().splitlines()) < n:
        assert time.monotonic() < deadline and proc.poll() is None, "the writer wrote nothing"
        time.sleep(0.05)


def raw_with_ids(conn: psycopg.Connection) -> tuple[dict[int, tuple], dict[int, tuple]]:
    events = {r[0]: tuple(r[1:]) for r in conn.execute(
        "SELECT id, client_id, module_id, user_id, event_type, occurred_at FROM client_usage_events")}
    samples = {r[0]: tuple(r[1:]) for r in conn.execute(
        'SELECT id, "latencyMs", "errorRatePct", "reqCount", "errCount", collected_at FROM system_metric_samples')}
    return events, samples


@pytest.mark.slow
def test_rollups_and_retention_while_a_writer_inserts_lose_no_row(erp_url, conn, tmp_path):
    create_erp_tables(conn)
    install_capture(conn)  # what pipeline_state installs: the late-data sensor reads its marks
    clients = add_clients(conn, 3)
    add_modules(conn, 3)
    set_health_config(conn, metrics_days=7, aggregate_days=365)
    days = [ago(d) for d in range(20, 0, -1)]
    for day in days:
        insert_events(conn, day_events(clients, day, 12))
        insert_samples(conn, day_samples(day, 6))
    seed_events, seed_samples = raw_with_ids(conn)
    with dg.instance_for_test() as instance:
        assert rollup_range(erp_url, days[0], days[-1], instance=instance).success
        log = tmp_path / "writer.jsonl"
        # late rows for the three previous days, and rows for today (a partition not complete yet)
        writer_days = ",".join(str(at(ago(d))) for d in (3, 2, 1, 0))
        out = open(tmp_path / "writer.out", "w+")  # noqa: SIM115 - the child writes into it
        writer = subprocess.Popen(  # bounded: 3000 rows, or 20 s as a safety limit
            [sys.executable, "-c", WRITER, erp_url, str(log), "3000", writer_days, "20"],
            stdout=out, stderr=subprocess.STDOUT, text=True,
        )
        try:
            wait_for_lines(log, 20, writer)
            runs = [rollup_range(erp_url, ago(10), ago(1), instance=instance, raise_on_error=False)]
            runs.append(prune(erp_url, instance=instance, usage_event_retention_days=7))
            runs.append(rollup_range(erp_url, ago(5), ago(1), instance=instance, raise_on_error=False))
            writer.wait(timeout=SAFETY_TIMEOUT_S)
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
        out.seek(0)
        assert writer.returncode == 0, out.read()[-3000:]
        assert all(r.success for r in runs), "a run failed while the writer was writing"
        wrote_events, wrote_samples = read_writer_log(log)
        assert wrote_events and len(wrote_events) == len(wrote_samples)
        ever_events = {**seed_events, **wrote_events}
        ever_samples = {**seed_samples, **wrote_samples}

        # Every row ever inserted is present, or its day's aggregate counts it (equals the reference over
        # every row the day ever had).
        now_events, now_samples = raw_with_ids(conn)
        assert set(now_events) <= set(ever_events) and set(now_samples) <= set(ever_samples)
        gone_days = {ever_events[i][4].date() for i in set(ever_events) - set(now_events)}
        gone_days |= {ever_samples[i][4].date() for i in set(ever_samples) - set(now_samples)}
        assert gone_days and all(d < ago(7) for d in gone_days)  # retention pruned, and only old days
        assert_equals_reference(conn, list(ever_samples.values()), list(ever_events.values()), gone_days)
        for i, row in now_samples.items():
            assert row == ever_samples[i]

        # The late-data sensor asks for the days the writer changed after their last rollup; running what
        # it asks for makes every aggregate equal the reference over every row ever inserted.
        defs = build_defs(ErpDatabase(url=erp_url))
        refresh = defs.resolve_job_def("rollup_refresh_job")
        resources = {"erp_db": ErpDatabase(url=erp_url)}
        cursor = None
        for _ in range(3):
            result = late_data_sensor(dg.build_sensor_context(instance=instance, resources=resources,
                                                              cursor=cursor))
            cursor = result.cursor
            if not result.run_requests:
                break
            for request in result.run_requests:
                assert request.partition_key in {str(ago(d)) for d in (3, 2, 1)}
                assert refresh.execute_in_process(
                    instance=instance, partition_key=request.partition_key,
                    asset_selection=request.asset_selection, tags=request.tags,
                ).success
        else:
            raise AssertionError("the late-data sensor keeps asking")
        assert_equals_reference(conn, list(ever_samples.values()), list(ever_events.values()), set(days))
        assert str(TODAY) not in {str(d) for d in aggregates(conn)[0]}  # today is not rolled up


# ----------------------------------------------------------------------------------------------------------
# (b) overlapping runs

CHILD_BACKFILL = """
import dagster as dg
from erp_pipelines.resources import ErpDatabase
from erp_pipelines.rollups.assets import client_daily_usage, system_metric_daily
db = ErpDatabase(url=dg.EnvVar("ERP_DATABASE_URL"), lock_timeout_ms=600000)
result = dg.materialize([system_metric_daily, client_daily_usage], resources={{"erp_db": db}},
                        tags={{"dagster/asset_partition_range_start": {first!r},
                              "dagster/asset_partition_range_end": {last!r}}}, raise_on_error=False)
raise SystemExit(0 if result.success else 3)
"""

CHILD_NIGHTLY = """
import dagster as dg
from erp_pipelines.defs_factory import build_defs
from erp_pipelines.resources import ErpDatabase
defs = build_defs(ErpDatabase(url=dg.EnvVar("ERP_DATABASE_URL"), lock_timeout_ms=600000))
result = defs.resolve_job_def("nightly_rollup_job").execute_in_process(partition_key={day!r}, raise_on_error=False)
raise SystemExit(0 if result.success else 3)
"""


def blocked_rollups(conn: psycopg.Connection) -> int:
    return conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'erp-pipelines:rollup:%%' "
        "AND wait_event_type = 'Lock' AND datname = current_database()"
    ).fetchone()[0]


@pytest.mark.slow
@pytest.mark.parametrize("second", ["backfill", "nightly"])
def test_overlapping_runs_serialize_and_equal_one_run(second, erp_url, conn):
    create_erp_tables(conn)
    clients = add_clients(conn, 3)
    add_modules(conn, 3)
    set_health_config(conn, metrics_days=365, aggregate_days=1825)  # the nightly run's retention keeps all
    days = [ago(d) for d in range(25, 5, -1)]
    shared = ago(12)
    for day in days:
        insert_events(conn, day_events(clients, day, 12))
        insert_samples(conn, day_samples(day, 6))
    assert rollup_range(erp_url, shared, shared).success
    insert_events(conn, day_events(clients, shared, 7, salt=5))  # the shared day changed since
    insert_samples(conn, day_samples(shared, 3, salt=5))
    env = {"ERP_DATABASE_URL": erp_url}
    with psycopg.connect(erp_url) as app:
        app.execute("SELECT 1 FROM system_metric_daily WHERE day = %s FOR UPDATE", (at(shared),))
        app.execute("SELECT 1 FROM client_daily_usage WHERE date = %s FOR UPDATE", (shared,))
        first = spawn(CHILD_BACKFILL.format(first=str(ago(25)), last=str(ago(10))), env=env)
        other = spawn(
            CHILD_BACKFILL.format(first=str(ago(18)), last=str(ago(6)))
            if second == "backfill"
            else CHILD_NIGHTLY.format(day=str(shared)),
            env=env,
        )
        deadline = time.monotonic() + SAFETY_TIMEOUT_S
        while blocked_rollups(conn) < 2:  # one on the row lock mid-transaction, one waiting for its turn
            assert time.monotonic() < deadline, "the two runs never overlapped"
            assert first.poll() is None and other.poll() is None, (finish(first), finish(other))
            time.sleep(0.05)
        waits = conn.execute(
            "SELECT wait_event FROM pg_stat_activity WHERE application_name LIKE 'erp-pipelines:rollup:%%' "
            "AND wait_event_type = 'Lock' AND datname = current_database() ORDER BY 1"
        ).fetchall()
        app.rollback()
    results = [finish(first), finish(other)]
    for code, out, err in results:
        assert code == 0, out + err[-5000:]
        assert "deadlock" not in (out + err).lower()
    # what waited: one run on the app's row lock (a tuple or transactionid lock), the other on the advisory
    # lock, or both on the row lock if they run different rollups first
    assert len(waits) == 2
    covered = {ago(d) for d in range(25, 5 if second == "backfill" else 9, -1)}  # the nightly: day -12 only
    samples, events = all_raw(conn)
    assert_equals_reference(conn, samples, events, covered)
    assert set(aggregates(conn)[0]) == covered
