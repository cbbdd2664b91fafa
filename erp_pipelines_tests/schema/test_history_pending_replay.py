"""A migration the history step is about to apply and that does not replay is an error before anything is
written: no `_prisma_migrations` row, no change, the message names the file, the statement and the fix. A
failure only live rows can cause still fails at run time and is recorded as Prisma records it
(test_history_apply.py). On PostgreSQL 18 and 15."""

from __future__ import annotations

from erp_pipelines_tests.support.history_folders import (
    BASELINE,
    BASELINE_SQL,
    create_baseline_tables,
    history_rows,
    run_history,
    write_folder,
)
from erp_pipelines_tests.support.prisma_cli import migrate_status

BROKEN_EXPLICIT = "20251202_0000_nick_and_broken_tag"
BROKEN_EXPLICIT_SQL = ('BEGIN;\nALTER TABLE "User" ADD COLUMN "nick" TEXT;\nCOMMIT;\n'
                       'BEGIN;\nALTER TABLE "Tag" ADD COLUMN "label" TEXT;\nCOMMIT;\n')


def _failure_message(result) -> str:
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return failure.event_specific_data.user_failure_data.description


def _exists(conn, relation: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (relation,)).fetchone()[0]


def test_begin_commit_script_with_a_structural_error_is_refused_before_anything_is_written(
        erp_url, erp_db, conn, tmp_path, pg_major):
    folder = write_folder(tmp_path / "migrations", {BASELINE: BASELINE_SQL, BROKEN_EXPLICIT: BROKEN_EXPLICIT_SQL})
    create_baseline_tables(conn)
    message = _failure_message(run_history(erp_db, folder))
    assert BROKEN_EXPLICIT in message and "statement 5" in message and "line 5" in message
    assert 'ALTER TABLE "Tag"' in message and 'relation "Tag" does not exist' in message
    assert str(folder / BROKEN_EXPLICIT / "migration.sql") in message
    assert "Nothing was written: no change, no _prisma_migrations row" in message
    assert "correct the script before it is applied" in message and "mark_applied" in message
    # nothing written: not the script's first transaction, not even the baseline's row or Prisma's table
    assert not _exists(conn, '"_prisma_migrations"')
    assert not conn.execute("SELECT count(*) FROM information_schema.columns WHERE column_name = 'nick'").fetchone()[0]
    code, output = migrate_status(erp_url, folder)  # Prisma sees both pending, as they are
    assert code != 0 and BROKEN_EXPLICIT in output and "failed" not in output.lower()


def test_lone_concurrent_index_on_a_missing_column_after_the_baseline_is_refused_without_a_row(
        erp_db, conn, tmp_path, pg_major):
    later = "20251203_0000_index_nick"
    folder = write_folder(tmp_path / "migrations", {BASELINE: BASELINE_SQL})
    create_baseline_tables(conn)
    assert run_history(erp_db, folder).success  # the baseline recorded first
    write_folder(folder, {later: 'CREATE INDEX CONCURRENTLY "User_nick_idx" ON "User"("nick");\n'})
    message = _failure_message(run_history(erp_db, folder))
    assert later in message and "statement 1" in message and 'column "nick" does not exist' in message
    assert history_rows(conn, later) == [] and len(history_rows(conn, BASELINE)) == 1
    assert not _exists(conn, '"User_nick_idx"')  # no INVALID index left behind either
