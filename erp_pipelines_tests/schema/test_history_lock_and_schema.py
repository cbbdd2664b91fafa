"""Prisma's advisory lock is held only around each migration and history write, waited for with a bound; the
schema comes from a Prisma `?schema=` URL or ERP_DATABASE_SCHEMA. Judged by `prisma migrate status`."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.prisma.history import record_history
from erp_pipelines.prisma.lock import PRISMA_ADVISORY_LOCK
from erp_pipelines.prisma.migrations import read_migrations_folder
from erp_pipelines.resources import ErpDatabase, erp_database_from_env
from erp_pipelines_tests.support.history_folders import (
    BASELINE,
    BASELINE_SQL,
    LockProbingDatabase,
    create_baseline_tables,
    history_rows,
    run_history,
    with_schema,
    write_folder,
)
from erp_pipelines_tests.support.prisma_cli import assert_prisma_up_to_date

LATER = {
    "20251202_0000_add_age": 'ALTER TABLE "User" ADD COLUMN "age" INTEGER;\n',
    "20251203_0000_add_views": 'ALTER TABLE "Post" ADD COLUMN "views" INTEGER;\nALTER TABLE "Post" ADD COLUMN "z" INTEGER;\n',
    "20251204_0000_index_title": 'CREATE INDEX CONCURRENTLY "Post_title_idx" ON "Post"("title");\n',
}
QUIET = {"log": lambda _: None}


def test_a_prisma_deploy_holding_the_lock_makes_the_step_wait_a_bounded_time_and_names_it(erp_url, conn, tmp_path):
    folder = write_folder(tmp_path / "migrations", {BASELINE: BASELINE_SQL, **LATER})
    create_baseline_tables(conn)
    with psycopg.connect(erp_url, autocommit=True, application_name="prisma-migrate-deploy") as prisma:
        prisma.execute("SELECT pg_advisory_lock(%s)", (PRISMA_ADVISORY_LOCK,))
        with pytest.raises(ErpPipelinesError) as err:
            record_history(ErpDatabase(url=erp_url, lock_timeout_ms=300), read_migrations_folder(folder), BASELINE,
                           **QUIET)
        message = str(err.value)
        assert f"pid {prisma.info.backend_pid}" in message and "prisma-migrate-deploy" in message
        assert str(PRISMA_ADVISORY_LOCK) in message and "nothing was changed" in message
        assert conn.execute("SELECT to_regclass('_prisma_migrations')").fetchone()[0] is None
    result = record_history(ErpDatabase(url=erp_url), read_migrations_folder(folder), BASELINE, **QUIET)
    assert result.applied == list(LATER)
    assert_prisma_up_to_date(erp_url, folder)


def test_lock_is_free_while_reading_and_between_migrations_and_held_during_each_migration(erp_url, conn, tmp_path):
    folder = write_folder(tmp_path / "migrations", {BASELINE: BASELINE_SQL, **LATER})
    create_baseline_tables(conn)
    db = LockProbingDatabase(ErpDatabase(url=erp_url, lock_timeout_ms=30_000), erp_url)
    seen_during_ddl: list[tuple] = []
    outcome: dict = {}

    with psycopg.connect(erp_url) as blocker:
        blocker.execute('LOCK TABLE "Post" IN ACCESS SHARE MODE')  # the second migration's ALTER waits on it
        worker = threading.Thread(target=lambda: outcome.update(
            result=record_history(db, read_migrations_folder(folder), BASELINE, **QUIET)))
        worker.start()
        deadline = time.monotonic() + 60
        while not seen_during_ddl and time.monotonic() < deadline:
            seen_during_ddl = conn.execute("""
                SELECT a.application_name, a.wait_event_type,
                       EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory'
                               AND l.objid = %s AND l.granted)
                FROM pg_stat_activity a
                WHERE a.datname = current_database() AND a.wait_event_type = 'Lock'
                  AND a.application_name LIKE 'erp-pipelines:prisma-migrate%%'
            """, (PRISMA_ADVISORY_LOCK,)).fetchall()
            time.sleep(0.05)
        blocker.rollback()
    worker.join(60)
    assert seen_during_ddl == [("erp-pipelines:prisma-migrate", "Lock", True)]
    result = outcome["result"]
    assert result.applied == list(LATER)
    assert db.probes and all(free for _, free in db.probes), db.probes  # free whenever a phase begins
    assert {p for p, _ in db.probes} >= {"prisma-history-read", "prisma-history", "prisma-migrate"}
    held = {o.name: round(o.lock_held_s * 1000, 1) for o in result.outcomes}
    print(f"Prisma's lock held per migration (ms): {held}")
    assert_prisma_up_to_date(erp_url, folder)


def test_schema_from_a_prisma_url_parameter_or_the_environment(erp_url, conn, tmp_path, monkeypatch):
    schema = "erp x"
    folder = write_folder(tmp_path / "migrations", {BASELINE: BASELINE_SQL, **LATER})
    conn.execute('CREATE SCHEMA "erp x"')
    create_baseline_tables(conn, schema)
    prisma_url = with_schema(erp_url, schema)

    by_url = run_history(ErpDatabase(url=prisma_url), folder)
    assert by_url.success, by_url
    assert len(history_rows(conn, BASELINE, schema)) == 1
    assert conn.execute("SELECT to_regclass('public._prisma_migrations')").fetchone()[0] is None
    assert_prisma_up_to_date(prisma_url, folder)

    monkeypatch.setenv("ERP_DATABASE_URL", erp_url)
    monkeypatch.setenv("ERP_DATABASE_SCHEMA", schema)
    by_env = run_history(erp_database_from_env(), folder)
    assert by_env.success, by_env
    md = by_env.asset_materializations_for_node("prisma_migration_history")[0].metadata
    assert md["dagster/table_name"].value == "erp x._prisma_migrations" and md["changed"].value is False

    monkeypatch.setenv("ERP_DATABASE_URL", with_schema(erp_url, "public"))
    conflict = run_history(erp_database_from_env(), folder)
    assert not conflict.success
    failure = next(e for e in conflict.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.event_specific_data.user_failure_data.description
    assert "'public' in the URL" in message and "'erp x'" in message
