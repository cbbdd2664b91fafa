"""Later migrations are applied the way `prisma migrate deploy` applies them, judged by the real Prisma CLI.

Each test runs on PostgreSQL 18 and 15 (the `pg_major` parameter of this folder's conftest) and ends with
`prisma migrate status` saying the database is up to date, or naming the failed migration where that is the point.
"""

from __future__ import annotations

import psycopg
import pytest

from erp_pipelines_tests.support.databases import new_database
from erp_pipelines_tests.support.history_folders import (
    BASELINE,
    BASELINE_SQL,
    checks,
    create_baseline_tables,
    history_rows,
    row_shape,
    run_history,
    run_sync_and_history,
    write_folder,
)
from erp_pipelines_tests.support.prisma_cli import (
    assert_prisma_reports_failed,
    assert_prisma_up_to_date,
    migrate_status,
    run_prisma,
)
from erp_pipelines_tests.support.snapshots import catalog_snapshot, history_snapshot


def _column_exists(conn, table: str, column: str) -> bool:
    return conn.execute(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' "
        "AND table_name = %s AND column_name = %s)", (table, column)).fetchone()[0]


def test_begin_commit_migration_after_the_baseline_is_applied_with_prisma_row(erp_url, erp_db, conn, tmp_path):
    later = "20251202_0000_add_age"
    folder = write_folder(tmp_path / "migrations", {
        BASELINE: BASELINE_SQL,
        later: 'BEGIN;\nALTER TABLE "User" ADD COLUMN "age" INTEGER;\nCOMMIT;\n',
    })
    create_baseline_tables(conn)
    result = run_history(erp_db, folder)
    assert result.success, result
    assert _column_exists(conn, "User", "age")
    (row,) = history_rows(conn, later)
    assert row_shape(row) | {"checksum": None} == {
        "name": later, "checksum": None, "finished": True, "rolled_back": False, "logs": None,
        "started_equals_finished": False, "applied_steps_count": 1}
    md = result.asset_materializations_for_node("prisma_migration_history")[0].metadata
    assert md["applied_kinds"].value == {later: "explicit transaction control"}
    assert all(c.passed for c in checks(result).values())
    assert_prisma_up_to_date(erp_url, folder)


def test_lone_create_index_concurrently_runs_outside_a_transaction_on_a_table_with_rows(
        erp_url, erp_db, conn, tmp_path):
    later = "20251202_0000_index_email"
    folder = write_folder(tmp_path / "migrations", {
        BASELINE: BASELINE_SQL,
        later: 'CREATE INDEX CONCURRENTLY "User_email_idx" ON "User"("email");\n',
    })
    create_baseline_tables(conn)
    conn.execute("""INSERT INTO "User" (email) SELECT 'u' || g || '@example.com' FROM generate_series(1, 5000) g""")
    result = run_history(erp_db, folder)
    assert result.success, result
    valid = conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = '\"User_email_idx\"'::regclass").fetchone()
    assert valid == (True,)
    (row,) = history_rows(conn, later)
    assert row_shape(row)["finished"] and row_shape(row)["applied_steps_count"] == 1
    assert_prisma_up_to_date(erp_url, folder)


def test_failing_explicit_transaction_migration_is_recorded_failed_then_resolve_rolled_back_applies_it(
        erp_url, erp_db, conn, tmp_path):
    later = "20251202_0000_unique_email"
    folder = write_folder(tmp_path / "migrations", {
        BASELINE: BASELINE_SQL,
        later: 'BEGIN;\nALTER TABLE "User" ADD COLUMN IF NOT EXISTS "nick" TEXT;\nCOMMIT;\n'
               'BEGIN;\nCREATE UNIQUE INDEX "User_email_key" ON "User"("email");\nCOMMIT;\n',
    })
    create_baseline_tables(conn)
    conn.execute("""INSERT INTO "User" (email) VALUES ('a@example.com'), ('a@example.com')""")

    failed = run_history(erp_db, folder)
    up_to_date = checks(failed)["migrations_up_to_date"]
    assert not up_to_date.passed
    assert f"resolve_rolled_back: [{later}]" in up_to_date.description
    assert "edit" not in up_to_date.description.lower()
    assert _column_exists(conn, "User", "nick")  # the script's first transaction committed, as with Prisma
    (row,) = history_rows(conn, later)
    shape = row_shape(row)
    assert (shape["finished"], shape["rolled_back"], shape["applied_steps_count"]) == (False, False, 0)
    assert f"Migration name: {later}" in row[4] and "23505" in row[4]
    assert_prisma_reports_failed(erp_url, folder, later)

    again = run_history(erp_db, folder)  # nothing new is tried while the failure is unresolved
    assert not checks(again)["migrations_up_to_date"].passed
    assert len(history_rows(conn, later)) == 1

    conn.execute("""DELETE FROM "User" WHERE id = (SELECT max(id) FROM "User")""")  # the cause, fixed
    resolved = run_history(erp_db, folder, resolve_rolled_back=[later])
    assert resolved.success, resolved
    first, second = history_rows(conn, later)
    assert row_shape(first)["rolled_back"] and not row_shape(first)["finished"]
    assert row_shape(second)["finished"] and row_shape(second)["applied_steps_count"] == 1
    assert conn.execute("SELECT to_regclass('\"User_email_key\"') IS NOT NULL").fetchone()[0]
    assert_prisma_up_to_date(erp_url, folder)


def test_migration_after_the_baseline_in_localecompare_order_is_really_run(erp_url, erp_db, conn, tmp_path):
    """`20251201120000_add_x` sorts before the baseline by code point, after it in Prisma's order."""
    later, spaced = "20251201120000_add_x", "20251203 add nickname by hand"
    folder = write_folder(tmp_path / "migrations", {
        BASELINE: BASELINE_SQL,
        later: 'ALTER TABLE "User" ADD COLUMN "x" INTEGER;\n',
        spaced: 'ALTER TABLE "User" ADD COLUMN "nickname" TEXT;\nALTER TABLE "Post" ADD COLUMN "slug" TEXT;\n',
    })
    create_baseline_tables(conn)
    result = run_history(erp_db, folder)
    assert result.success, result
    assert _column_exists(conn, "User", "x") and _column_exists(conn, "User", "nickname")
    md = result.asset_materializations_for_node("prisma_migration_history")[0].metadata
    assert md["baselined"].value == [BASELINE] and md["applied"].value == [later, spaced]
    assert_prisma_up_to_date(erp_url, folder)


def test_crlf_checkout_of_applied_migrations_is_not_an_edit_but_a_real_edit_is(erp_url, erp_db, conn, tmp_path):
    later = "20251202_0000_add_age"
    folder = write_folder(tmp_path / "migrations", {
        BASELINE: BASELINE_SQL,
        later: 'ALTER TABLE "User" ADD COLUMN "age" INTEGER;\nALTER TABLE "Post" ADD COLUMN "views" INTEGER;\n',
    })
    create_baseline_tables(conn)
    assert run_history(erp_db, folder).success
    for name in (BASELINE, later):  # a Windows checkout: every LF became CRLF
        path = folder / name / "migration.sql"
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    crlf = run_history(erp_db, folder)
    assert checks(crlf)["checksums_match"].passed
    assert_prisma_up_to_date(erp_url, folder)
    path = folder / later / "migration.sql"
    path.write_bytes(path.read_bytes().replace(b"INTEGER", b"BIGINT"))
    edited = run_history(erp_db, folder)
    assert not checks(edited)["checksums_match"].passed
    md = edited.asset_materializations_for_node("prisma_migration_history")[0].metadata
    assert md["checksum_mismatches"].value == [later]


# PostgreSQL 18 only: the rows compared are the ones Prisma's CLI writes, the same on any major; each
# `prisma migrate resolve` call keeps node alive ~10 s after its work, so a second major cost ~40 s. PG 15's
# history rows are judged by `prisma migrate status` in every other test of this module.
@pytest.mark.parametrize("pg_major", ["18"])
def test_rows_written_without_running_equal_what_prisma_resolve_applied_writes(
        erp_url, erp_db, conn, pg_major, request, tmp_path):
    hand = "20251202_0000_applied_by_hand"
    folder = write_folder(tmp_path / "migrations", {
        "20251101_0000_init": 'CREATE TABLE "Legacy" ("id" INTEGER);\n',
        BASELINE: BASELINE_SQL,
        hand: 'ALTER TABLE "User" ADD COLUMN "age" INTEGER;\n',
    })
    create_baseline_tables(conn)
    conn.execute('ALTER TABLE "User" ADD COLUMN "age" INTEGER')  # what the operator applied by hand
    assert run_history(erp_db, folder, mark_applied=[hand]).success
    # The same rows written by Prisma itself, in a sibling database.
    prisma_url = new_database(request.getfixturevalue("pg_server" if pg_major == "18" else "pg15_server"))
    for name in ("20251101_0000_init", BASELINE, hand):
        code, output = run_prisma(["migrate", "resolve", "--applied", name], prisma_url, folder)
        assert code == 0, output
    with psycopg.connect(prisma_url, autocommit=True) as prisma_conn:
        for name in ("20251101_0000_init", BASELINE, hand):
            ours, = history_rows(conn, name)
            theirs, = history_rows(prisma_conn, name)
            assert row_shape(ours) == row_shape(theirs), name
            assert row_shape(ours)["logs"] == "" and row_shape(ours)["started_equals_finished"]
    assert_prisma_up_to_date(erp_url, folder)


def test_only_baseline_covered_or_named_failed_attempts_are_resolved(erp_url, erp_db, conn, tmp_path):
    legacy, later = "20251101_0000_init", "20251202_0000_add_age"
    folder = write_folder(tmp_path / "migrations", {
        legacy: 'CREATE TABLE "Legacy" ("id" INTEGER);\n',
        BASELINE: BASELINE_SQL,
        later: 'ALTER TABLE "User" ADD COLUMN IF NOT EXISTS "age" INTEGER;\n',
    })
    create_baseline_tables(conn)
    # Failed attempts of a baseline-covered migration (the ERP's legacy case) and of a later one.
    conn.execute("""
        CREATE TABLE "_prisma_migrations" ("id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL,
          "finished_at" TIMESTAMPTZ, "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ,
          "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(), "applied_steps_count" INTEGER NOT NULL DEFAULT 0);
        INSERT INTO "_prisma_migrations" (id, checksum, migration_name, logs)
        VALUES ('00000000-0000-4000-8000-000000000001', 'x', '20251101_0000_init', 'legacy failure'),
               ('00000000-0000-4000-8000-000000000002', 'y', '20251202_0000_add_age', 'later failure');
    """)
    first = run_history(erp_db, folder)
    md = first.asset_materializations_for_node("prisma_migration_history")[0].metadata
    assert md["resolved_failed"].value == [legacy] and md["applied"].value == []
    up_to_date = checks(first)["migrations_up_to_date"]
    assert not up_to_date.passed and later in up_to_date.description and "resolve_rolled_back" in up_to_date.description
    assert not _column_exists(conn, "User", "age")
    assert_prisma_reports_failed(erp_url, folder, later)

    second = run_history(erp_db, folder, resolve_rolled_back=[later])
    assert second.success, second
    md = second.asset_materializations_for_node("prisma_migration_history")[0].metadata
    assert md["resolved_rolled_back"].value == [later] and md["applied"].value == [later]
    assert _column_exists(conn, "User", "age")
    assert_prisma_up_to_date(erp_url, folder)


def test_unrunnable_later_migration_is_a_named_error_after_the_baseline_is_recorded(erp_url, erp_db, conn, tmp_path):
    later = "20251202_0000_table_and_index"
    folder = write_folder(tmp_path / "migrations", {
        BASELINE: BASELINE_SQL,
        later: 'CREATE TABLE "Tag" ("id" INTEGER);\nCREATE INDEX CONCURRENTLY "Tag_id_idx" ON "Tag"("id");\n',
    })
    create_baseline_tables(conn)
    result = run_history(erp_db, folder)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.event_specific_data.user_failure_data.description
    assert later in message and "line 2" in message and "cannot run inside a transaction block" in message
    assert history_rows(conn, later) == [] and len(history_rows(conn, BASELINE)) == 1
    assert conn.execute("SELECT to_regclass('\"Tag\"')").fetchone()[0] is None
    code, output = migrate_status(erp_url, folder)  # Prisma sees it pending, as it is
    assert code != 0 and later in output and "not yet been applied" in output


def test_sync_and_history_on_an_empty_database_apply_every_kind_and_a_second_run_changes_nothing(
        erp_url, erp_db, conn, tmp_path):
    folder = write_folder(tmp_path / "migrations", {
        BASELINE: BASELINE_SQL,
        "20251201120000_add_x": 'ALTER TABLE "User" ADD COLUMN "x" INTEGER;\n',
        "20251202_0000_explicit": 'BEGIN;\nALTER TABLE "Post" ADD COLUMN "slug" TEXT;\nCOMMIT;\n',
        "20251203 index by hand": 'CREATE INDEX CONCURRENTLY "Post_slug_idx" ON "Post"("slug");\n',
        "20251204_0000_two": 'ALTER TABLE "User" ADD COLUMN "y" INTEGER;\nCREATE INDEX "User_y_idx" ON "User"("y");\n',
    })
    first = run_sync_and_history(erp_db, folder)
    assert first.success
    kinds = first.asset_materializations_for_node("prisma_migration_history")[0].metadata["applied_kinds"].value
    assert kinds == {"20251201120000_add_x": "single statement", "20251202_0000_explicit": "explicit transaction control",
                     "20251203 index by hand": "non-transactional statement",
                     "20251204_0000_two": "implicit transaction"}
    assert_prisma_up_to_date(erp_url, folder)
    before = (catalog_snapshot(conn), history_snapshot(conn))
    second = run_sync_and_history(erp_db, folder)
    assert second.success and (catalog_snapshot(conn), history_snapshot(conn)) == before
    assert second.asset_materializations_for_node("prisma_migration_history")[0].metadata["changed"].value is False
