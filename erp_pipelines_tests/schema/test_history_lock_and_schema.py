"""Prisma's advisory lock is held like `prisma migrate deploy` holds it (from the history read through the last
migration), waited for with a bound; the schema comes from a Prisma `?schema=` URL or ERP_DATABASE_SCHEMA.
Judged by `prisma migrate status`."""

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
            record_history(ErpDatabase(url=erp_url), read_migrations_folder(folder), BASELINE, lock_wait_ms=300,
                           **QUIET)
        message = str(err.value)
        assert f"pid {prisma.info.backend_pid}" in message and "prisma-migrate-deploy" in message
        assert str(PRISMA_ADVISORY_LOCK) in message and "nothing was changed" in message
        assert conn.execute("SELECT to_regclass('_prisma_migrations')").fetchone()[0] is None
    result = record_history(ErpDatabase(url=erp_url), read_migrations_folder(folder), BASELINE, **QUIET)
    assert result.applied == list(LATER)
    assert_prisma_up_to_date(erp_url, folder)


def _sessions_waiting(conn: psycopg.Connection, application_name: str, wait_event: str | None = None) -> bool:
    return conn.execute("""
        SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
                       AND application_name = %s AND wait_event_type = 'Lock'
                       AND (%s::text IS NULL OR wait_event = %s::text))
    """, (application_name, wait_event, wait_event)).fetchone()[0]


def _wait_until(condition, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(0.05)


def test_prisma_lock_is_held_from_the_history_read_through_the_last_migration(erp_url, conn, tmp_path):
    folder = write_folder(tmp_path / "migrations", {BASELINE: BASELINE_SQL, **LATER})
    create_baseline_tables(conn)
    db = LockProbingDatabase(ErpDatabase(url=erp_url, lock_timeout_ms=30_000), erp_url)
    outcome: dict = {}
    with psycopg.connect(erp_url) as blocker:
        blocker.execute('LOCK TABLE "Post" IN ACCESS SHARE MODE')  # the second migration's ALTER waits on it
        worker = threading.Thread(target=lambda: outcome.update(
            result=record_history(db, read_migrations_folder(folder), BASELINE, **QUIET)))
        worker.start()
        _wait_until(lambda: _sessions_waiting(conn, "erp-pipelines:prisma-migrate"), "the second migration's wait")
        held_during_ddl = not db.lock_is_free()
        blocker.rollback()
    worker.join(60)
    result = outcome["result"]
    assert held_during_ddl and result.applied == list(LATER)
    # One holding: free before the history is read, held while the CONCURRENTLY build is watched, free after.
    assert db.probes == [("prisma-migrate", True), ("prisma-migrate-watch", False), ("prisma-history-read", True)]
    assert result.plan is not None and result.plan.applied_names() == list(LATER)
    assert_prisma_up_to_date(erp_url, folder)


def test_a_concurrent_deploy_cannot_record_a_failure_between_our_migrations_or_make_us_run_one_twice(
        erp_url, conn, tmp_path):
    first, second = "20251202_0000_add_views", "20251203_0000_audit_and_column"
    second_sql = ('BEGIN;\nINSERT INTO "Audit" ("note") VALUES (\'second ran\');\nCOMMIT;\n'
                  'BEGIN;\nALTER TABLE "User" ADD COLUMN "second" INTEGER;\nCOMMIT;\n')
    folder = write_folder(tmp_path / "migrations", {
        BASELINE: BASELINE_SQL,
        # "Audit" is created by the history, not by hand: a pending migration must replay before it runs
        first: 'ALTER TABLE "Post" ADD COLUMN "views" INTEGER;\nCREATE TABLE "Audit" ("id" SERIAL PRIMARY KEY, "note" TEXT);\n',
        second: second_sql,
    })
    create_baseline_tables(conn)
    record_history(ErpDatabase(url=erp_url), read_migrations_folder(write_folder(
        tmp_path / "baseline_only", {BASELINE: BASELINE_SQL})), BASELINE, **QUIET)

    def concurrent_deploy() -> None:
        """What another `prisma migrate deploy` does: take the lock (waiting), read the history, and run the
        second migration if it has no row; here its first transaction commits and then the deploy dies, leaving
        a failed row (finished_at NULL)."""
        with psycopg.connect(erp_url, autocommit=True, application_name="concurrent-deploy") as other:
            other.execute("SET statement_timeout = '60s'")
            other.execute("SELECT pg_advisory_lock(%s)", (PRISMA_ADVISORY_LOCK,))
            if not other.execute("SELECT count(*) FROM _prisma_migrations WHERE migration_name = %s",
                                 (second,)).fetchone()[0]:
                other.execute("INSERT INTO _prisma_migrations (id, checksum, migration_name, logs) "
                              "VALUES (gen_random_uuid()::text, 'x', %s, 'died')", (second,))
                other.execute("""INSERT INTO "Audit" ("note") VALUES ('second ran')""")
            other.execute("SELECT pg_advisory_unlock(%s)", (PRISMA_ADVISORY_LOCK,))

    outcome: dict = {}
    db = ErpDatabase(url=erp_url, lock_timeout_ms=30_000)
    with psycopg.connect(erp_url) as blocker:
        blocker.execute('LOCK TABLE "Post" IN ACCESS SHARE MODE')  # holds us inside the first migration
        ours = threading.Thread(target=lambda: outcome.update(
            result=record_history(db, read_migrations_folder(folder), BASELINE, **QUIET)))
        ours.start()
        _wait_until(lambda: _sessions_waiting(conn, "erp-pipelines:prisma-migrate"), "our first migration's wait")
        theirs = threading.Thread(target=concurrent_deploy)
        theirs.start()
        _wait_until(lambda: _sessions_waiting(conn, "concurrent-deploy", "advisory"), "the other deploy's lock wait")
        blocker.rollback()
    ours.join(60)
    theirs.join(60)
    assert outcome["result"].applied == [first, second]
    assert conn.execute('SELECT count(*) FROM "Audit"').fetchone()[0] == 1  # the committed part ran once
    (row,) = history_rows(conn, second)
    assert row[2] is not None and row[5] is None  # applied once, by us; no failed row recorded in between
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
