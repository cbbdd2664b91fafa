""""The plan is the run": `erp-pipelines plan` (a real process, PRISMA_MIGRATIONS_DIR set) prints the schema
statements and then every `_prisma_migrations` row and later migration `prisma_migration_history` then writes and
applies, the same lines the real run records, and the rows in the database are the ones the plan named."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.prisma.history import read_plan
from erp_pipelines.prisma.migrations import read_migrations_folder
from erp_pipelines.resources import ErpDatabase
from erp_pipelines_tests.support.commands import erp_pipelines as cli
from erp_pipelines_tests.support.history_folders import (
    BASELINE,
    BASELINE_SQL,
    history_rows,
    row_shape,
    run_history,
    run_sync_and_history,
    write_folder,
)
from erp_pipelines_tests.support.prisma_cli import assert_prisma_up_to_date

HISTORY_HEADER = "-- 2. prisma_migration_history"
LEGACY = "20251101_0000_init"
FAILED_LEGACY_ROW = """
CREATE TABLE "_prisma_migrations" ("id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL,
  "finished_at" TIMESTAMPTZ, "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(), "applied_steps_count" INTEGER NOT NULL DEFAULT 0);
INSERT INTO "_prisma_migrations" (id, checksum, migration_name, logs)
VALUES ('00000000-0000-4000-8000-000000000001', 'x', '20251101_0000_init', 'legacy failure');
"""


@pytest.fixture
def pg_major() -> str:
    """The plan is computed by the same code on every major: PostgreSQL 18 only, to keep the suite short."""
    return "18"


def _printed_history(erp_url: str, folder, *args: str) -> tuple[str, list[str]]:
    out = cli("plan", *args, env={"ERP_DATABASE_URL": erp_url, "PRISMA_MIGRATIONS_DIR": str(folder),
                                  "DAGSTER_PG_URL": "unused"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(HISTORY_HEADER))
    assert start > 0 and any(line.startswith("-- 1. erp_schema") for line in lines[:start])
    return out.stdout, [line.removeprefix("--   ") for line in lines[start + 1:] if line.startswith("--   ")]


def _recorded_history(result) -> list[str]:
    md = result.asset_materializations_for_node("prisma_migration_history")[0].metadata
    return [line.removeprefix("- ") for line in md["history_plan"].value.splitlines()]


def _steps(conn, name: str) -> list[int]:
    return [row_shape(r)["applied_steps_count"] for r in history_rows(conn, name) if row_shape(r)["finished"]]


def test_printed_plan_with_prisma_migrations_dir_set_is_what_the_job_then_does(erp_url, erp_db, conn, tmp_path):
    folder = write_folder(tmp_path / "migrations", {
        LEGACY: 'CREATE TABLE "Legacy" ("id" INTEGER);\n',
        BASELINE: BASELINE_SQL,
        "20251202_0000_two": 'ALTER TABLE "User" ADD COLUMN "y" INTEGER;\nCREATE INDEX "User_y_idx" ON "User"("y");\n',
        "20251203_0000_explicit": 'BEGIN;\nALTER TABLE "Post" ADD COLUMN "slug" TEXT;\nCOMMIT;\n',
        "20251204_0000_index": 'CREATE INDEX CONCURRENTLY "Post_slug_idx" ON "Post"("slug");\n',
    })
    conn.execute(FAILED_LEGACY_ROW)
    stdout, printed = _printed_history(erp_url, folder)
    assert 'CREATE TABLE "User"' in stdout.split(HISTORY_HEADER)[0]  # the schema statements come first
    assert printed == [
        f"row  {LEGACY}: mark the failed attempt rolled back (the baseline covers it; it blocked deploy, P3009)",
        f"row  {LEGACY}: insert an applied row without running it (baseline, like `prisma migrate resolve --applied`)",
        f"row  {BASELINE}: insert an applied row without running it (baseline, like `prisma migrate resolve "
        "--applied`)",
        *[line for line in printed if line.startswith("run  ")],
    ] and [line.split(":")[0] for line in printed if line.startswith("run  ")] == [
        "run  1. 20251202_0000_two", "run  2. 20251203_0000_explicit", "run  3. 20251204_0000_index"]
    assert "one transaction" in printed[3] and "as `prisma migrate deploy` runs it" in printed[4]

    result = run_sync_and_history(erp_db, folder)
    assert result.success
    assert _recorded_history(result) == printed
    assert [_steps(conn, n) for n in (LEGACY, BASELINE)] == [[0], [0]]  # recorded, not run
    assert [_steps(conn, n) for n in ("20251202_0000_two", "20251203_0000_explicit", "20251204_0000_index")] == [
        [1], [1], [1]]  # run
    assert_prisma_up_to_date(erp_url, folder)

    late, by_hand, later = "20251115_0000_late_branch", "20251205_0000_by_hand", "20251206_0000_later"
    write_folder(folder, {late: 'ALTER TABLE "User" ADD COLUMN "late" TEXT;\n',
                          by_hand: 'ALTER TABLE "User" ADD COLUMN "hand" TEXT;\n',
                          later: 'ALTER TABLE "User" ADD COLUMN "z" INTEGER;\n'})
    conn.execute('ALTER TABLE "User" ADD COLUMN "hand" TEXT')  # what the operator applied by hand
    _, printed = _printed_history(erp_url, folder, "--mark-applied", by_hand)
    assert [line.split(":")[0] for line in printed] == [f"row  {by_hand}", f"run  1. {late}", f"run  2. {later}"]
    assert "late-merged" in printed[1]
    second = run_history(erp_db, folder, mark_applied=[by_hand])
    assert second.success and _recorded_history(second) == printed
    assert [_steps(conn, n) for n in (by_hand, late, later)] == [[0], [1], [1]]
    _, again = _printed_history(erp_url, folder)
    assert again == ["nothing to do: every migration of the folder is recorded as applied"]
    assert_prisma_up_to_date(erp_url, folder)


def test_history_plan_for_a_role_that_cannot_read_prisma_migrations_names_the_grant(erp_url, erp_db, conn, tmp_path):
    folder = write_folder(tmp_path / "migrations", {BASELINE: BASELINE_SQL})
    conn.execute(BASELINE_SQL)
    assert run_history(erp_db, folder).success
    role = "erp_reader_" + uuid.uuid4().hex[:8]
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'Plan-pw-xyz'").format(sql.Identifier(role)))
    try:
        url = psycopg.conninfo.make_conninfo(erp_url, user=role, password="Plan-pw-xyz")
        with pytest.raises(ErpPipelinesError) as err:
            read_plan(ErpDatabase(url=url), read_migrations_folder(folder), BASELINE)
        message = str(err.value)
        assert f'GRANT SELECT ON "public"."_prisma_migrations" TO "{role}"' in message, message
        assert "Plan-pw-xyz" not in message
    finally:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_printed_plan_of_a_migration_that_would_be_refused_ends_with_the_refusal_and_writes_nothing(
        erp_url, conn, tmp_path):
    """The run replays the migrations it would apply before writing anything (history.replay_pending) and
    refuses one that does not replay: the plan prints what it would do, then that same refusal, and exits 1."""
    broken = "20251202_0000_broken_tag"
    folder = write_folder(tmp_path / "migrations", {
        BASELINE: BASELINE_SQL,
        broken: 'BEGIN;\nALTER TABLE "Tag" ADD COLUMN "label" TEXT;\nCOMMIT;\n',
    })
    conn.execute(BASELINE_SQL)
    out = cli("plan", env={"ERP_DATABASE_URL": erp_url, "PRISMA_MIGRATIONS_DIR": str(folder),
                           "DAGSTER_PG_URL": "unused"})
    assert out.returncode != 0
    assert HISTORY_HEADER in out.stdout and "the run would stop here" in out.stdout
    assert broken in out.stderr and 'relation "Tag" does not exist' in out.stderr, out.stderr
    assert not conn.execute("SELECT to_regclass('\"_prisma_migrations\"') IS NOT NULL").fetchone()[0]
