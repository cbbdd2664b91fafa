"""Kill -9 the run process, or terminate its backend, in the middle of a 30-partition single-run backfill of
both rollups and in the middle of a retention batch. Afterwards every table is exactly as before the step or
as after it (never in between), and the next run (or the step's own retry) ends where a run that never
crashed ends (a clean run on another fresh database, and the independent Python reference).

The step is stopped at a known point the way the reliability harness does it (erp_pipelines_tests/support/processes.py): the
test holds a row lock the step needs half-way through its transaction (the aggregate rows of day 15 of the
backfill; one raw sample in the middle of a retention day), waits until the child's backend is blocked on
it, and strikes. Also: the data-loss guard (late rows for a pruned day never replace its aggregate) and a
missing privilege named as the GRANT to run.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import dagster as dg
import psycopg
import pytest

from erp_pipelines.resources import ErpDatabase
from erp_pipelines.rollups.assets import client_daily_usage, system_metric_daily
from erp_pipelines_tests.support.aggregates import aggregates, assert_equals_reference
from erp_pipelines_tests.support.databases import new_database
from erp_pipelines_tests.support.erp_data import (
    add_clients,
    add_modules,
    create_erp_tables,
    insert_events,
    insert_samples,
    set_health_config,
)
from erp_pipelines_tests.support.ledger import grant_own_schema
from erp_pipelines_tests.support.processes import (
    finish,
    spawn,
    strike,
    wait_backend_gone,
    wait_for_blocked_backend,
)
from erp_pipelines_tests.support.raw_rows import all_raw, at, day_events, day_samples, raw_state
from erp_pipelines_tests.support.runs import prune, rollup_range

FIRST_DAY = date(2025, 6, 1)
DAYS = [FIRST_DAY + timedelta(days=i) for i in range(30)]
BLOCKED_DAY = DAYS[14]

@pytest.fixture
def erp_tables(conn: psycopg.Connection) -> psycopg.Connection:
    """The test database with the ERP's tables and 3 modules (as rollups/conftest.py's fixture)."""
    create_erp_tables(conn)
    add_modules(conn, 3)
    return conn


@pytest.fixture
def dagster_instance():
    with dg.instance_for_test() as inst:
        yield inst


# ----------------------------------------------------------------------------------------------------------
# the arranged database


def seed_backfill(conn: psycopg.Connection) -> None:
    """30 days of raw rows; day 15 was rolled up earlier from its first half, the second half came later."""
    create_erp_tables(conn)
    clients = add_clients(conn, 3)
    add_modules(conn, 3)
    for day in DAYS:
        insert_events(conn, day_events(clients, day, 12))
        insert_samples(conn, day_samples(day, 6))


def add_late_half(conn: psycopg.Connection) -> None:
    clients = [uuid.UUID(int=i + 1) for i in range(3)]
    insert_events(conn, day_events(clients, BLOCKED_DAY, 9, salt=3))
    insert_samples(conn, day_samples(BLOCKED_DAY, 4, salt=3))


def arranged_backfill_db(pg_server) -> str:
    url = new_database(pg_server)
    with psycopg.connect(url, autocommit=True) as c:
        seed_backfill(c)
    rollup_range(url, BLOCKED_DAY, BLOCKED_DAY)
    with psycopg.connect(url, autocommit=True) as c:
        add_late_half(c)
    return url


CHILD_ROLLUP = """
import dagster as dg
from erp_pipelines.resources import ErpDatabase
from erp_pipelines.rollups.assets import client_daily_usage, system_metric_daily
# lock_timeout far above the test's safety limit: the step must wait where the test holds it.
db = ErpDatabase(url=dg.EnvVar("ERP_DATABASE_URL"), lock_timeout_ms=600000)
result = dg.materialize([system_metric_daily, client_daily_usage], resources={{"erp_db": db}},
                        tags={{"dagster/asset_partition_range_start": {first!r},
                              "dagster/asset_partition_range_end": {last!r}}}, raise_on_error=False)
retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
print("RETRIES", len(retries))
for e in retries:
    print("RETRY-MESSAGE", e.event_specific_data.error.to_string())
raise SystemExit(0 if result.success else 3)
"""


def _by_day(pair: tuple[dict, dict]) -> tuple[dict, dict]:
    metric, usage = pair
    per_day: dict = {}
    for key, value in usage.items():
        per_day.setdefault(key[0], {})[key] = value
    return metric, per_day


@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill9", "terminate_backend"])
def test_crash_in_the_middle_of_a_30_day_backfill_leaves_each_day_before_or_after(how, pg_server):
    url = arranged_backfill_db(pg_server)
    clean = arranged_backfill_db(pg_server)
    with psycopg.connect(url, autocommit=True) as conn, psycopg.connect(clean, autocommit=True) as c2:
        before, raw_before = aggregates(conn), raw_state(conn)
        assert rollup_range(clean, DAYS[0], DAYS[-1]).success
        after = aggregates(c2)
        assert before != after and before[0] != after[0] and before[1] != after[1]

        # The app holds day 15's aggregate rows: the backfill commits days 1-14 (one short transaction per
        # day, days_per_transaction=1), then waits on day 15.
        with psycopg.connect(url) as app:
            app.execute("SELECT 1 FROM system_metric_daily WHERE day = %s FOR UPDATE", (at(BLOCKED_DAY),))
            app.execute("SELECT 1 FROM client_daily_usage WHERE date = %s FOR UPDATE", (BLOCKED_DAY,))
            proc = spawn(
                CHILD_ROLLUP.format(first=str(DAYS[0]), last=str(DAYS[-1])), env={"ERP_DATABASE_URL": url}
            )
            backend = wait_for_blocked_backend(conn, "erp-pipelines:rollup:", proc)
            app_name = conn.execute(
                "SELECT application_name FROM pg_stat_activity WHERE pid = %s", (backend,)
            ).fetchone()[0]
            blocked_table = app_name.split(":")[-1]

            def check() -> None:
                now, was, will = _by_day(aggregates(conn)), _by_day(before), _by_day(after)
                assert raw_state(conn) == raw_before
                for i, table in enumerate(("system_metric_daily", "client_daily_usage")):
                    for day in DAYS:
                        current = now[i].get(day)
                        assert current in (was[i].get(day), will[i].get(day)), f"{table} {day} is half-written"
                        if table == blocked_table:  # committed chunks are whole days, the struck one is not
                            expected = will[i].get(day) if day < BLOCKED_DAY else was[i].get(day)
                            assert current == expected, f"{table} {day}"

            strike(how, proc, conn, backend)
            if how == "terminate_backend":
                # The step's retry (RetryPolicy, DatabaseUnavailable is retryable) blocks again on the lock
                # (or the other rollup does); meanwhile the struck table shows the state before the step.
                wait_backend_gone(conn, backend)
                wait_for_blocked_backend(conn, "erp-pipelines:rollup:", proc)
            check()
            app.rollback()
        if how == "kill9":
            # The orphaned backend only notices its client is gone when it answers: after the lock is
            # released it finishes day 15's statement, fails to send the result and rolls back.
            wait_backend_gone(conn, backend)
            check()

        code, out, err = finish(proc)
        if how == "kill9":
            assert code != 0
            assert rollup_range(url, DAYS[0], DAYS[-1]).success  # the next run
        else:
            assert code == 0, out + err[-5000:]
            assert "RETRIES 1" in out
            assert "connection to the ERP database was lost during rollup:" in out + err
        assert aggregates(conn) == after
        samples, events = all_raw(conn)
        assert_equals_reference(conn, samples, events)


# ----------------------------------------------------------------------------------------------------------
# retention

RETENTION_TODAY = "2025-07-10"  # samples/events before 2025-07-03 may go; aggregates before 2025-06-10
RETENTION_CONFIG = {"today": RETENTION_TODAY, "usage_event_retention_days": 7, "batch_size": 2}
STRUCK_DAY = DAYS[9]


def arranged_retention_db(pg_server) -> str:
    url = new_database(pg_server)
    with psycopg.connect(url, autocommit=True) as c:
        seed_backfill(c)
        set_health_config(c, metrics_days=7, aggregate_days=30)
    assert rollup_range(url, DAYS[0], DAYS[-1]).success
    return url


CHILD_RETENTION = """
import dagster as dg
from erp_pipelines.resources import ErpDatabase
from erp_pipelines.retention.assets import retention_pruning
db = ErpDatabase(url=dg.EnvVar("ERP_DATABASE_URL"), lock_timeout_ms=600000)
result = dg.materialize([retention_pruning], resources={{"erp_db": db}},
                        run_config={{"ops": {{"retention_pruning": {{"config": {config!r}}}}}}}, raise_on_error=False)
retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
print("RETRIES", len(retries))
raise SystemExit(0 if result.success else 3)
"""


def samples_per_day(conn: psycopg.Connection) -> dict[date, int]:
    rows = conn.execute(
        "SELECT date_trunc('day', collected_at)::date, count(*) FROM system_metric_samples GROUP BY 1"
    ).fetchall()
    return dict(rows)


def events_per_day(conn: psycopg.Connection) -> dict[date, int]:
    rows = conn.execute(
        "SELECT date_trunc('day', occurred_at)::date, count(*) FROM client_usage_events GROUP BY 1"
    ).fetchall()
    return dict(rows)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill9", "terminate_backend"])
def test_crash_in_the_middle_of_a_retention_batch_leaves_every_day_whole(how, pg_server):
    url = arranged_retention_db(pg_server)
    clean = arranged_retention_db(pg_server)
    with psycopg.connect(url, autocommit=True) as conn, psycopg.connect(clean, autocommit=True) as c2:
        full_samples, full_events = samples_per_day(conn), events_per_day(conn)
        aggregates_before = aggregates(conn)
        prune(clean, **RETENTION_CONFIG)
        clean_end = (raw_state(c2), aggregates(c2))
        # a sample in the middle of STRUCK_DAY's id range: with batch_size 2 the day's 2nd/3rd batch waits
        ids = [r[0] for r in conn.execute(
            "SELECT id FROM system_metric_samples WHERE collected_at >= %s AND collected_at < %s ORDER BY id",
            (at(STRUCK_DAY), at(STRUCK_DAY + timedelta(days=1))),
        )]
        with psycopg.connect(url) as app:
            app.execute("SELECT 1 FROM system_metric_samples WHERE id = %s FOR UPDATE", (ids[len(ids) // 2],))
            proc = spawn(CHILD_RETENTION.format(config=RETENTION_CONFIG), env={"ERP_DATABASE_URL": url})
            backend = wait_for_blocked_backend(conn, "erp-pipelines:retention", proc)
            assert conn.execute(
                "SELECT backend_xid IS NOT NULL FROM pg_stat_activity WHERE pid = %s", (backend,)
            ).fetchone()[0], "retention should be blocked after deleting the day's first batch"

            def check() -> None:
                samples_now, events_now = samples_per_day(conn), events_per_day(conn)
                # every day whole or gone; the struck day and the ones after it untouched; no aggregate gone
                for day, n in full_samples.items():
                    assert samples_now.get(day, 0) in (0, n), f"samples of {day} half-deleted"
                    if day >= STRUCK_DAY:
                        assert samples_now.get(day) == n
                assert samples_now.get(DAYS[0], 0) == 0  # days before the struck one were pruned, committed
                assert events_now == full_events  # samples are pruned first
                assert aggregates(conn) == aggregates_before

            strike(how, proc, conn, backend)
            if how == "terminate_backend":
                wait_backend_gone(conn, backend)
                wait_for_blocked_backend(conn, "erp-pipelines:retention", proc)  # the retry, same place
            check()
            app.rollback()
        if how == "kill9":
            wait_backend_gone(conn, backend)
            check()
        code, out, err = finish(proc)
        if how == "kill9":
            assert code != 0
            assert prune(url, **RETENTION_CONFIG).success  # the next run
        else:
            assert code == 0, out + err[-5000:]
            assert "RETRIES 1" in out
        assert (raw_state(conn), aggregates(conn)) == clean_end
        # what is left is exactly: raw rows from 2025-07-03 on (none: the data ends 2025-06-30) ... and the
        # aggregates from 2025-06-10 on, equal to the reference over the rows that were there.
        assert samples_per_day(conn) == {} and events_per_day(conn) == {}
        assert min(aggregates(conn)[0]) == date(2025, 6, 10)


# ----------------------------------------------------------------------------------------------------------
# the data-loss guard


def test_late_rows_for_a_pruned_day_never_replace_its_aggregate(erp_tables, erp_url, dagster_instance):
    instance = dagster_instance
    conn = erp_tables
    clients = add_clients(conn, 2)
    set_health_config(conn, metrics_days=7, aggregate_days=30)
    d1, d2 = DAYS[0], DAYS[1]
    for day in (d1, d2):
        insert_events(conn, day_events(clients, day, 10))
        insert_samples(conn, day_samples(day, 5))
    assert rollup_range(erp_url, d1, d2, instance=instance).success
    assert prune(erp_url, instance=instance, today="2025-06-10", usage_event_retention_days=7).success
    assert samples_per_day(conn) == {} and events_per_day(conn) == {}
    kept = aggregates(conn)
    # Late rows arrive for the pruned days: one small sample and one event for d1 (the guard by totals),
    # and a huge one for d2 (the guard by age: the day is older than today - metricsRetentionDays).
    insert_samples(conn, [(9000, 1.0, 1, 0, at(d1, 12)), (9000, 1.0, 100000, 900, at(d2, 12))])
    insert_events(conn, [(clients[0], 1, 1, "view", at(d1, 12))] + [(clients[1], 2, 2, "edit", at(d2, 13))] * 50)
    # Whatever the run config says (none, as the late-data sensor's refresh; a 'today' that makes the days
    # recent, which defeated the old age guard), the pruned days keep their aggregate: pruned_days decides.
    for config in (None, {"today": "2025-06-02"}, {"today": "2025-06-02", "usage_event_retention_days": 1000}):
        result = rollup_range(
            erp_url, d1, d2, instance=instance,
            run_config={"ops": {"system_metric_daily": {"config": {k: v for k, v in config.items()
                                                                    if k == "today"}},
                                "client_daily_usage": {"config": config}}} if config else None,
        )
        assert result.success  # the kept days are not reconciliation failures
        assert aggregates(conn) == kept
        for node in ("system_metric_daily", "client_daily_usage"):
            md = result.asset_materializations_for_node(node)[0].metadata
            assert md["day_outcomes"].value["kept_pruned"] == 2, md
            late = [e for e in result.get_asset_check_evaluations()
                    if e.asset_key.path[-1] == node and e.check_name == "no_late_rows_for_pruned_days"]
            assert late and not late[0].passed
    logs = [r.user_message for r in instance.all_logs(result.run_id)]
    assert any("were pruned by retention and keep their aggregate unchanged" in m for m in logs)
    # Retention keeps those late rows: their day was pruned; they stay present (never lost).
    assert prune(erp_url, instance=instance, today="2025-06-10", usage_event_retention_days=7).success
    assert sum(samples_per_day(conn).values()) == 2 and sum(events_per_day(conn).values()) == 51


def test_a_missing_grant_is_named_and_not_retried(erp_tables, erp_url, admin_conn, dagster_instance):
    instance = dagster_instance
    from psycopg import sql

    conn = erp_tables
    clients = add_clients(conn, 1)
    insert_events(conn, day_events(clients, DAYS[0], 5))
    insert_samples(conn, day_samples(DAYS[0], 3))
    role = "erp_rel2_" + uuid.uuid4().hex[:8]
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'Rel2-pw-xyz'").format(sql.Identifier(role)))
    try:
        db = conn.execute("SELECT current_database()").fetchone()[0]
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(db), sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT SELECT ON system_metric_samples, system_health_config TO {}").format(
            sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON system_metric_daily, client_daily_usage "
                             "TO {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT USAGE ON SEQUENCE system_metric_daily_id_seq TO {}").format(
            sql.Identifier(role)))
        grant_own_schema(conn, role)
        info = psycopg.conninfo.conninfo_to_dict(erp_url)
        url = psycopg.conninfo.make_conninfo(erp_url, user=role, password="Rel2-pw-xyz")
        assert info.get("dbname") == db
        result = dg.materialize(
            [client_daily_usage], partition_key=str(DAYS[0]), resources={"erp_db": ErpDatabase(url=url)},
            instance=instance, raise_on_error=False,
        )
        assert not result.success
        failures = [e for e in result.all_events if e.is_step_failure]
        text = failures[0].step_failure_data.user_failure_data.description
        assert f'GRANT SELECT ON "public"."client_usage_events" TO "{role}"' in text, text  # schema-qualified
        assert "Rel2-pw-xyz" not in text
        assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
        # with the grant, it works
        conn.execute(sql.SQL("GRANT SELECT ON client_usage_events TO {}").format(sql.Identifier(role)))
        assert dg.materialize([system_metric_daily, client_daily_usage], partition_key=str(DAYS[0]),
                              resources={"erp_db": ErpDatabase(url=url)}, instance=instance).success
    finally:
        conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
        admin_conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
