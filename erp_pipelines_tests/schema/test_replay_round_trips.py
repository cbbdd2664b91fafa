"""The replay sends the statements of consecutive migrations to the server together as one query (split where
it handles transaction control itself), and still names the exact file, statement and line when a migration
fails. On PostgreSQL 15 and 18."""

from __future__ import annotations

import pytest

from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.prisma.replay import replay
from erp_pipelines_tests.support.replay_folders import history
from erp_pipelines_tests.support.round_trips import counting_connection

MIGRATIONS = 30


def _plain_history() -> dict[str, str]:
    """MIGRATIONS migrations of three statements each (tables, columns, indexes)."""
    folder = {"20250101_0000_init": 'CREATE TABLE "T0" ("id" SERIAL PRIMARY KEY);\n'}
    for n in range(1, MIGRATIONS):
        folder[f"20250102_{n:04d}_step"] = (
            f'CREATE TABLE "T{n}" ("id" SERIAL PRIMARY KEY, "ref" INTEGER REFERENCES "T{n - 1}"("id"));\n'
            f'ALTER TABLE "T{n - 1}" ADD COLUMN "c{n}" TEXT;\n'
            f'CREATE INDEX "T{n}_ref_idx" ON "T{n}"("ref");\n'
        )
    return folder


def test_replay_sends_consecutive_migrations_as_one_query_not_one_per_statement(erp_url, tmp_path, pg_major):
    migrations = history(tmp_path / "m", _plain_history())
    with counting_connection(erp_url) as conn:
        wanted = replay(conn, migrations, "public").catalog
        migration_queries = [q for q in conn.sent if "CREATE TABLE" in q]
    assert len(migration_queries) == 1 and migration_queries[0].count("CREATE TABLE") == MIGRATIONS
    assert len(conn.sent) < 30  # the rest: the throw-away schema, search_path, catalog reads
    assert len(wanted.tables) == MIGRATIONS and "c29" in wanted.tables["T28"].columns
    assert "T29_ref_idx" in wanted.indexes


def test_statement_failing_inside_a_batch_of_migrations_is_named_with_its_file_and_line(erp_url, tmp_path, pg_major):
    folder = _plain_history()
    bad = "20250103_0000_bad"
    folder[bad] = ('ALTER TABLE "T1" ADD COLUMN "ok" TEXT;\n\n'
                   'CREATE INDEX "ok_idx" ON "T1"("ok");\n'
                   'ALTER TABLE "T1" ADD COLUMN "oops" "NoSuchType";\n'
                   'ALTER TABLE "T2" ADD COLUMN "never" TEXT;\n')
    migrations = history(tmp_path / "m", folder)
    with counting_connection(erp_url) as conn:
        with pytest.raises(ErpPipelinesError) as failed:
            replay(conn, migrations, "public")
        left = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'erp_pipelines_shadow%'").fetchone()
    message = str(failed.value)
    assert f"Migration {bad} fails" in message and "at statement 3" in message
    assert "line 4" in message and "NoSuchType" in message and str(migrations[-1].path) in message
    assert "erp_pipelines_shadow" not in message and left == (0,)


def test_recorded_migration_failing_in_its_batch_is_not_verifiable_with_its_statement(erp_url, tmp_path, pg_major):
    folder = _plain_history()
    by_hand = "20250103_0000_by_hand"
    folder[by_hand] = 'ALTER TABLE "T1" ADD COLUMN "x" TEXT;\nALTER TABLE "Elsewhere" ADD COLUMN "y" TEXT;\n'
    folder["20250104_0000_after"] = 'ALTER TABLE "T1" ADD COLUMN "after" TEXT;\n'
    migrations = history(tmp_path / "m", folder)
    with counting_connection(erp_url) as conn:
        replayed = replay(conn, migrations, "public", trusted={by_hand})
    assert list(replayed.not_verifiable) == [by_hand]
    assert replayed.not_verifiable[by_hand].startswith("statement 2 (line 2) does not replay")
    assert '"Elsewhere" does not exist' in replayed.not_verifiable[by_hand]
    columns = replayed.catalog.tables["T1"].columns
    assert "after" in columns and "x" not in columns  # left out whole, the rest kept
