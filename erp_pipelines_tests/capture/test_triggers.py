"""The capture triggers on the real database: what the ERP's writes mark, who may fire them, idempotence."""

from __future__ import annotations

from datetime import date

import dagster as dg
import psycopg
import pytest

from erp_pipelines.capture import triggers
from erp_pipelines.capture.log import MarkedDay, marked_days
from erp_pipelines.capture.targets import CHANGE_CAPTURE_ENV, CaptureTarget
from erp_pipelines.resources import ErpDatabase, PrismaMigrationsFolder
from erp_pipelines.schema.assets import erp_schema, prisma_migration_history, system_health_config
from erp_pipelines.schema.own_schema_asset import pipeline_state
from erp_pipelines_tests.support.capture import CAPTURE_TRIGGERS, capture_catalog, install_capture, marks
from erp_pipelines_tests.support.erp_data import create_erp_tables, insert_events, insert_samples
from erp_pipelines_tests.support.raw_rows import at

SCHEMA_GROUP = [erp_schema, prisma_migration_history, system_health_config, pipeline_state]
MAR1, MAR2, MAR5 = date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 5)


def clear_log(conn: psycopg.Connection) -> None:
    conn.execute("DELETE FROM erp_pipelines.invalidations")


def test_insert_update_and_delete_mark_the_utc_days_they_touch(captured):
    conn = captured
    insert_samples(conn, [(100, None, 10, 1, at(MAR1, 23)), (200, None, 5, 0, at(MAR2, 0)), (1, None, 1, 0, None)])
    assert marks(conn) == [("system_metric_samples", MAR1), ("system_metric_samples", MAR2)]
    clear_log(conn)
    # an in-place correction of a raw column marks its day
    conn.execute('UPDATE system_metric_samples SET "latencyMs" = 150 WHERE collected_at = %s', (at(MAR1, 23),))
    assert marks(conn) == [("system_metric_samples", MAR1)]
    clear_log(conn)
    # a row moved to another day marks the day it left and the day it joined
    conn.execute("UPDATE system_metric_samples SET collected_at = %s WHERE collected_at = %s", (at(MAR5, 3), at(MAR1, 23)))
    assert marks(conn) == [("system_metric_samples", MAR1), ("system_metric_samples", MAR5)]
    clear_log(conn)
    # a delete by the ERP (dedup, GDPR) marks its day; a row without a timestamp belongs to no day
    conn.execute("DELETE FROM system_metric_samples WHERE collected_at = %s OR collected_at IS NULL", (at(MAR2, 0),))
    assert marks(conn) == [("system_metric_samples", MAR2)]


def test_one_statement_writes_one_mark_per_day_and_cascades_are_captured(captured):
    conn = captured
    client = conn.execute("SELECT id FROM clients ORDER BY id LIMIT 1").fetchone()[0]
    insert_events(conn, [(client, 1, h, "view", at(MAR1, h)) for h in range(24)] + [(client, 2, 1, "edit", at(MAR2, 5))])
    rows = conn.execute("SELECT raw_table, day FROM erp_pipelines.invalidations ORDER BY day").fetchall()
    assert len(rows) == 25  # executemany: one statement per row, so one mark each (append-only, no dedup)
    clear_log(conn)
    conn.execute(
        "INSERT INTO client_usage_events (client_id, module_id, event_type, occurred_at) "
        "SELECT %s, 1, 'view', %s::timestamp + make_interval(mins => g) FROM generate_series(1, 1000) g",
        (client, at(MAR5)),
    )
    assert conn.execute("SELECT count(*) FROM erp_pipelines.invalidations").fetchone()[0] == 1
    clear_log(conn)
    # the ERP deletes a module: ON DELETE SET NULL updates its events, which the UPDATE trigger sees
    conn.execute("DELETE FROM modules WHERE id = 2")
    assert marks(conn) == [("client_usage_events", MAR2)]


def test_our_own_deletes_can_switch_marking_off_for_their_transaction_only(captured):
    conn = captured
    insert_samples(conn, [(100, None, 10, 1, at(MAR1, 8)), (100, None, 10, 1, at(MAR2, 8))])
    clear_log(conn)
    with conn.transaction():  # what retention does before deleting rows an aggregate provably holds
        conn.execute("SELECT set_config('erp_pipelines.capture', 'off', true)")
        conn.execute("DELETE FROM system_metric_samples WHERE collected_at < %s", (at(MAR2),))
    assert marks(conn) == []
    conn.execute("DELETE FROM system_metric_samples")
    assert marks(conn) == [("system_metric_samples", MAR2)]


def test_the_app_role_fires_the_triggers_without_any_grant_on_our_schema(captured):
    conn = captured
    conn.execute("CREATE ROLE erp_app NOLOGIN")
    conn.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON system_metric_samples TO erp_app")
    conn.execute("GRANT USAGE ON SEQUENCE system_metric_samples_id_seq TO erp_app")
    with conn.transaction():
        conn.execute("SET LOCAL ROLE erp_app")
        insert_samples(conn, [(100, None, 10, 1, at(MAR1, 8))])
        conn.execute('UPDATE system_metric_samples SET "reqCount" = 11')
    assert marks(conn) == [("system_metric_samples", MAR1)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
        conn.execute("SET LOCAL ROLE erp_app")
        conn.execute("INSERT INTO erp_pipelines.invalidations (raw_table, day) VALUES ('x', '2025-01-01')")
    with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
        conn.execute("SET LOCAL ROLE erp_app")
        conn.execute("SELECT erp_pipelines.erp_pipelines_capture_system_metric_samples_insert()")


def test_out_of_order_commits_are_all_marked(captured, erp_url):
    conn = captured
    with psycopg.connect(erp_url) as early, psycopg.connect(erp_url) as late:
        insert_samples(early, [(1, None, 1, 0, at(MAR1, 1))])  # takes the lower id, commits last
        insert_samples(late, [(2, None, 1, 0, at(MAR2, 1))])
        late.commit()
        assert marks(conn) == [("system_metric_samples", MAR2)]
        early.commit()
    assert marks(conn) == [("system_metric_samples", MAR1), ("system_metric_samples", MAR2)]


def test_install_twice_changes_nothing(captured):
    conn = captured
    before = capture_catalog(conn)
    assert len(before) == CAPTURE_TRIGGERS
    report = install_capture(conn)
    assert not report.changed and len(report.triggers_present) == CAPTURE_TRIGGERS
    assert capture_catalog(conn) == before


def test_uuid_and_text_id_raw_tables_are_captured(conn):
    conn.execute("CREATE TABLE events_uuid (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), at timestamp(3))")
    conn.execute("CREATE TABLE events_cuid (id text PRIMARY KEY, at timestamptz)")
    conn.execute("SET TIME ZONE 'America/Los_Angeles'")
    install_capture(conn, (CaptureTarget("events_uuid", "at", ()), CaptureTarget("events_cuid", "at", ())))
    conn.execute("INSERT INTO events_uuid (at) VALUES ('2025-03-01 23:30')")
    # 2025-03-01 20:00 in Los Angeles is 2025-03-02 04:00 UTC: the mark is the UTC day
    conn.execute("INSERT INTO events_cuid (id, at) VALUES ('ckz1', '2025-03-01 20:00')")
    conn.execute("DELETE FROM events_cuid")
    assert marked_days(conn) == [MarkedDay("events_cuid", MAR2), MarkedDay("events_uuid", MAR1)]


def test_uninstall_drops_our_triggers_and_functions_and_keeps_the_log(captured):
    conn = captured
    insert_samples(conn, [(1, None, 1, 0, at(MAR1))])
    with conn.transaction():
        report = triggers.uninstall(conn)
    assert len(report.triggers_dropped) == CAPTURE_TRIGGERS and capture_catalog(conn) == []
    assert conn.execute("SELECT count(*) FROM pg_proc WHERE proname LIKE 'erp_pipelines_capture_%'").fetchone()[0] == 0
    insert_samples(conn, [(1, None, 1, 0, at(MAR2))])
    assert marks(conn) == [("system_metric_samples", MAR1)]


def _schema_group(erp_url: str, run_config: dict | None = None) -> dg.ExecuteInProcessResult:
    resources = {"erp_db": ErpDatabase(url=erp_url), "migrations": PrismaMigrationsFolder()}
    return dg.materialize(SCHEMA_GROUP, resources=resources, run_config=run_config)


def test_schema_group_installs_capture_and_our_objects_are_no_drift(erp_url, conn):
    first = _schema_group(erp_url)
    state = first.asset_materializations_for_node("pipeline_state")[0].metadata
    assert state["change_capture"].value is True and len(state["capture_triggers"].value) == CAPTURE_TRIGGERS
    second = _schema_group(erp_url)
    sync = second.asset_materializations_for_node("erp_schema")[0].metadata
    assert (sync["statements"].value, sync["drift_items"].value) == (0, 0), sync["plan"].value
    assert second.asset_materializations_for_node("pipeline_state")[0].metadata["changed"].value is False


def test_opt_out_installs_no_trigger_and_removes_ours(erp_url, conn, monkeypatch):
    create_erp_tables(conn)
    monkeypatch.setenv(CHANGE_CAPTURE_ENV, "off")
    result = _schema_group(erp_url)
    assert capture_catalog(conn) == []
    assert conn.execute("SELECT to_regclass('erp_pipelines.invalidations') IS NOT NULL").fetchone()[0]
    assert result.asset_materializations_for_node("pipeline_state")[0].metadata["change_capture"].value is False
    monkeypatch.delenv(CHANGE_CAPTURE_ENV)
    _schema_group(erp_url)
    assert len(capture_catalog(conn)) == CAPTURE_TRIGGERS
    # the run config wins over the environment
    _schema_group(erp_url, {"ops": {"pipeline_state": {"config": {"change_capture": False}}}})
    assert capture_catalog(conn) == []


def test_pipeline_state_reenables_capture_triggers_disabled_by_hand(erp_url, conn):
    _schema_group(erp_url)
    conn.execute("ALTER TABLE client_usage_events DISABLE TRIGGER erp_pipelines_capture_client_usage_events_insert")
    conn.execute("ALTER TABLE system_metric_samples DISABLE TRIGGER USER")
    conn.execute(
        "ALTER TABLE client_usage_events ENABLE REPLICA TRIGGER erp_pipelines_capture_client_usage_events_delete"
    )
    state = _schema_group(erp_url).asset_materializations_for_node("pipeline_state")[0].metadata
    assert sorted(state["triggers_enabled"].value) == [
        "client_usage_events.erp_pipelines_capture_client_usage_events_delete",
        "client_usage_events.erp_pipelines_capture_client_usage_events_insert",
        "system_metric_samples.erp_pipelines_capture_system_metric_samples_delete",
        "system_metric_samples.erp_pipelines_capture_system_metric_samples_insert",
        "system_metric_samples.erp_pipelines_capture_system_metric_samples_update",
    ]
    assert state["changed"].value is True
    assert conn.execute(  # every capture trigger enabled again, none left disabled or replica-only
        "SELECT count(*) FILTER (WHERE tgenabled <> 'O'), count(*) FROM pg_trigger "
        "WHERE tgname LIKE 'erp_pipelines_capture_%'"
    ).fetchone() == (0, CAPTURE_TRIGGERS)
    again = _schema_group(erp_url).asset_materializations_for_node("pipeline_state")[0].metadata
    assert again["triggers_enabled"].value == [] and again["changed"].value is False
