"""`prisma migrate deploy` parity of the history step: scripts run as Prisma runs them wait instead of timing out,
late-merged migrations are applied, resolutions Prisma refuses are refused, old checksums match, and a failed
migration says which statement of which file failed and what to do. Judged by `prisma migrate status`. The
CONCURRENTLY wait runs on PostgreSQL 18 and 15 (this folder's conftest); decisions and messages that do not depend
on the server's version run on 18 only, to keep the suite short."""

from __future__ import annotations

import threading
import time

import dagster as dg
import psycopg
import pytest

from erp_pipelines.prisma.history import unpadded_checksum
from erp_pipelines.resources import ErpDatabase, PrismaMigrationsFolder
from erp_pipelines.schema.assets import prisma_migration_history
from erp_pipelines_tests.support.history_folders import (
    BASELINE,
    BASELINE_SQL,
    checks,
    create_baseline_tables,
    history_rows,
    row_shape,
    run_history,
    write_folder,
)
from erp_pipelines_tests.support.prisma_cli import (
    assert_prisma_up_to_date,
    migrate_status,
)
from erp_pipelines_tests.support.snapshots import history_snapshot

LATER = "20251202_0000_add_age"
LATER_SQL = 'ALTER TABLE "User" ADD COLUMN "age" INTEGER;\n'
MIGRATE_SESSION = "erp-pipelines:prisma-migrate"
ONE_MAJOR = pytest.mark.parametrize("pg_major", ["18"])


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return failure.event_specific_data.user_failure_data.description


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    md = result.asset_materializations_for_node("prisma_migration_history")[0].metadata
    return {k: v.value for k, v in md.items()}


def _seconds_waiting(conn: psycopg.Connection, application_name: str) -> float:
    """How long a session of ours has been waiting on a lock in its current query (0 if it is not waiting)."""
    return conn.execute("""
        SELECT coalesce(max(extract(epoch FROM clock_timestamp() - query_start)), 0)::float8 FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = %s AND wait_event_type = 'Lock'
    """, (application_name,)).fetchone()[0]


def test_concurrent_index_build_waits_for_an_old_app_transaction_instead_of_timing_out_and_logs_the_blocker(
        erp_url, conn, tmp_path):
    index = "20251202_0000_index_email"
    folder = write_folder(tmp_path / "migrations", {
        BASELINE: BASELINE_SQL,
        index: 'CREATE INDEX CONCURRENTLY "User_email_idx" ON "User"("email");\n',
    })
    create_baseline_tables(conn)
    conn.execute("""INSERT INTO "User" (email) VALUES ('a@example.com')""")
    db = ErpDatabase(url=erp_url)
    lock_timeout_s = db.lock_timeout_ms / 1000  # our default: 5 s
    instance = dg.DagsterInstance.ephemeral()
    outcome: dict = {}
    with psycopg.connect(erp_url, application_name="the-app") as app:
        app.execute("""UPDATE "User" SET email = email WHERE id = 1""")  # an app transaction left open
        app_pid = app.info.backend_pid
        worker = threading.Thread(target=lambda: outcome.update(result=dg.materialize(
            [prisma_migration_history], instance=instance, raise_on_error=False,
            resources={"erp_db": db, "migrations": PrismaMigrationsFolder(path=str(folder))})))
        worker.start()
        deadline = time.monotonic() + 120
        while _seconds_waiting(conn, MIGRATE_SESSION) < lock_timeout_s + 1:  # older than our lock_timeout
            assert worker.is_alive() and time.monotonic() < deadline, "the CONCURRENTLY build never waited"
            time.sleep(0.1)
        app.commit()
    worker.join(120)
    result = outcome["result"]
    assert result.success, result
    assert conn.execute("""SELECT indisvalid FROM pg_index WHERE indexrelid = '"User_email_idx"'::regclass""")\
        .fetchone() == (True,)
    (row,) = history_rows(conn, index)
    assert row_shape(row)["finished"] and row_shape(row)["applied_steps_count"] == 1 and row[4] is None
    logs = [r.user_message for r in instance.all_logs(result.run_id)]
    waits = [m for m in logs if m.startswith(f"Waiting: {index}") and f"pid {app_pid}" in m]
    assert waits and "'the-app'" in waits[0] and "without our lock_timeout" in waits[0]
    assert checks(result)["migrations_up_to_date"].passed
    assert_prisma_up_to_date(erp_url, folder)


@ONE_MAJOR
def test_one_transaction_apply_keeps_our_lock_timeout_and_names_the_statement(erp_url, conn, tmp_path):
    folder = write_folder(tmp_path / "migrations", {BASELINE: BASELINE_SQL, LATER: LATER_SQL})
    create_baseline_tables(conn)
    db = ErpDatabase(url=erp_url, lock_timeout_ms=500)
    with psycopg.connect(erp_url) as app:
        app.execute('SELECT count(*) FROM "User"')  # ACCESS SHARE held: the ALTER waits, then times out
        stopped = run_history(db, folder)
    assert not stopped.success
    message = _failure_message(stopped)
    assert "lock_timeout" in message and str(folder / LATER / "migration.sql") in message
    assert "statement 1 (line 1)" in message and "no _prisma_migrations row" in message
    assert "Fix the cause in the database" not in message
    assert history_rows(conn, LATER) == [] and len(history_rows(conn, BASELINE)) == 1
    assert run_history(db, folder).success  # once the app's transaction is gone
    assert_prisma_up_to_date(erp_url, folder)


@ONE_MAJOR
def test_late_merged_migration_sorting_before_the_baseline_is_applied_and_old_checksums_match(
        erp_url, erp_db, conn, tmp_path):
    legacy, late = "20251101_0000_init", "20251115_0000_late_branch"
    folder = write_folder(tmp_path / "migrations", {
        legacy: 'CREATE TABLE "Legacy" ("id" INTEGER);\n', BASELINE: BASELINE_SQL, LATER: LATER_SQL})
    create_baseline_tables(conn)
    first = run_history(erp_db, folder)
    assert _metadata(first)["baselined"] == [legacy, BASELINE]  # the first baselining records, never runs
    assert conn.execute("SELECT to_regclass('\"Legacy\"')").fetchone()[0] is None
    # A very old Prisma wrote the baseline's checksum without leading zeros.
    old = unpadded_checksum(BASELINE_SQL.encode())
    assert len(old) < 64
    conn.execute("UPDATE _prisma_migrations SET checksum = %s WHERE migration_name = %s", (old, BASELINE))

    write_folder(folder, {late: 'ALTER TABLE "User" ADD COLUMN "late" TEXT;\n'})  # merged later, older timestamp
    second = run_history(erp_db, folder)
    assert second.success, second
    md = _metadata(second)
    assert md["applied"] == [late] and md["late_merged_applied"] == [late] and md["baselined"] == []
    assert "late-merged" in md["history_plan"]
    assert conn.execute("SELECT to_regclass('\"User\"') IS NOT NULL AND EXISTS (SELECT 1 FROM pg_attribute "
                        "WHERE attrelid = '\"User\"'::regclass AND attname = 'late')").fetchone()[0]
    (row,) = history_rows(conn, late)
    assert row_shape(row)["applied_steps_count"] == 1 and not row_shape(row)["started_equals_finished"]
    assert checks(second)["checksums_match"].passed and md["checksum_mismatches"] == []
    assert_prisma_up_to_date(erp_url, folder)


@ONE_MAJOR
def test_resolutions_prisma_refuses_are_clear_errors_and_write_nothing(erp_url, erp_db, conn, tmp_path):
    pending = "20251203_0000_add_views"
    folder = write_folder(tmp_path / "migrations", {BASELINE: BASELINE_SQL, LATER: LATER_SQL})
    create_baseline_tables(conn)
    assert run_history(erp_db, folder).success
    write_folder(folder, {pending: 'ALTER TABLE "Post" ADD COLUMN "views" INTEGER;\n'})
    before = history_snapshot(conn)
    for config, code in (({"mark_applied": [LATER]}, "P3008"), ({"resolve_rolled_back": [LATER]}, "P3012"),
                         ({"resolve_rolled_back": [pending]}, "P3011")):
        refused = run_history(erp_db, folder, **config)
        assert not refused.success
        message = _failure_message(refused)
        assert code in message and "Nothing was written" in message and "What to do: Remove" in message, message
        assert history_snapshot(conn) == before  # not even the pending migration was applied
    code, output = migrate_status(erp_url, folder)
    assert code != 0 and pending in output
    assert run_history(erp_db, folder).success
    assert_prisma_up_to_date(erp_url, folder)


@ONE_MAJOR
def test_a_fault_in_a_migrations_sql_names_the_statement_and_file_and_does_not_blame_the_database(
        erp_url, erp_db, conn, tmp_path):
    create_baseline_tables(conn)
    in_ours = write_folder(tmp_path / "ours", {
        BASELINE: BASELINE_SQL,
        LATER: 'ALTER TABLE "User" ADD COLUMN "age" INTEGER;\nUPDATE "User" SET "nope" = 1;\n'})
    failed = run_history(erp_db, in_ours)
    message = _failure_message(failed)
    assert "statement 2 (line 2)" in message and str(in_ours / LATER / "migration.sql") in message
    assert "SQLSTATE 42703" in message and "correct the script before it is applied" in message
    assert "Fix the cause in the database" not in message
    # refused before anything was written: not even Prisma's table (nor the baseline's row)
    assert conn.execute("SELECT to_regclass('_prisma_migrations')").fetchone()[0] is None

    explicit = "20251203_0000_explicit"
    as_prisma = write_folder(tmp_path / "as_prisma", {
        BASELINE: BASELINE_SQL, explicit: 'BEGIN;\nUPDATE "User" SET "nope" = 1;\nCOMMIT;\n'})
    # A script with its own BEGIN/COMMIT is replayed before it runs: the fault shows there, nothing is written
    # (run as Prisma runs it, it would have left a failed row; test_history_pending_replay.py).
    refused = run_history(erp_db, as_prisma)
    message = _failure_message(refused)
    assert "statement 2 (line 2)" in message and "SQLSTATE 42703" in message and explicit in message
    assert "Nothing was written" in message and "correct the script before it is applied" in message
    assert "Fix the cause in the database" not in message and "resolve_rolled_back" not in message
    assert conn.execute("SELECT to_regclass('_prisma_migrations')").fetchone()[0] is None
    code, output = migrate_status(erp_url, as_prisma)
    assert code != 0 and explicit in output and "failed" not in output.lower()
