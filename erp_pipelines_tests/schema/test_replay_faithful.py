"""The replay builds what `prisma migrate deploy` builds: enum types followed through Prisma's remove-a-value
dance and renames, transaction-control and session statements in scripts, DO blocks and functions as written;
and trusted (recorded) migrations that do not replay are reported, not fatal. On PostgreSQL 15 and 18."""

from __future__ import annotations

import psycopg
import pytest

from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.prisma.replay import replay
from erp_pipelines.prisma.sync import plan_sync
from erp_pipelines_tests.support.replay_folders import history

ENUM_DANCE = {
    "20250101_0000_init": """CREATE TYPE "Status" AS ENUM ('DRAFT', 'SENT', 'PAID');
CREATE TABLE "Invoice" ("id" SERIAL PRIMARY KEY, "status" "Status" NOT NULL DEFAULT 'DRAFT');""",
    # Prisma's migrate dev, removing SENT
    "20250201_0000_remove_sent": """BEGIN;
CREATE TYPE "Status_new" AS ENUM ('DRAFT', 'PAID');
ALTER TABLE "Invoice" ALTER COLUMN "status" DROP DEFAULT;
ALTER TABLE "Invoice" ALTER COLUMN "status" TYPE "Status_new" USING ("status"::text::"Status_new");
ALTER TYPE "Status" RENAME TO "Status_old";
ALTER TYPE "Status_new" RENAME TO "Status";
DROP TYPE "Status_old";
ALTER TABLE "Invoice" ALTER COLUMN "status" SET DEFAULT 'DRAFT';
COMMIT;""",
    "20250301_0000_add_void": """ALTER TYPE "Status" ADD VALUE 'VOID' BEFORE 'PAID';""",
    "20250401_0000_use_void": """ALTER TABLE "Invoice" ALTER COLUMN "status" SET DEFAULT 'VOID';
ALTER TYPE "Status" RENAME VALUE 'DRAFT' TO 'OPEN';""",
    "20250501_0000_rename_type": """ALTER TYPE "Status" RENAME TO "InvoiceStatus";
ALTER TYPE "InvoiceStatus" ADD VALUE 'DISPUTED';""",
}


def _connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def _applied_one_by_one(url: str, migrations) -> psycopg.Connection:
    """Each migration.sql as one simple query, as `prisma migrate deploy` sends it (the reference)."""
    conn = _connect(url)
    for migration in migrations:
        conn.execute(migration.path.read_text())
    return conn


def test_enum_values_follow_prismas_remove_value_dance_renames_and_later_additions(erp_url, tmp_path, pg_major):
    migrations = history(tmp_path / "m", ENUM_DANCE)
    with _connect(erp_url) as conn:
        wanted = replay(conn, migrations, "public").catalog
    reference = _applied_one_by_one(erp_url, migrations)
    with reference:
        labels = reference.execute(
            "SELECT array_agg(enumlabel::text ORDER BY enumsortorder) FROM pg_enum "
            "WHERE enumtypid = '\"InvoiceStatus\"'::regtype").fetchone()[0]
        plan, *_ = plan_sync(reference, migrations, "public")  # the database deploy built: no false drift
    assert labels == ["OPEN", "VOID", "PAID", "DISPUTED"]
    assert wanted.enums == {"InvoiceStatus": tuple(labels)}
    assert "VOID" in wanted.tables["Invoice"].columns["status"].default
    assert plan.steps == [] and plan.drift == [], plan.markdown()


def test_script_with_begin_set_transaction_and_set_local_replays_as_deploy_runs_it(erp_url, tmp_path, pg_major):
    migrations = history(tmp_path / "m", {
        "20250101_0000_init": 'CREATE TABLE "Account" ("id" SERIAL PRIMARY KEY, "balance" INTEGER);',
        "20250201_0000_backfill": """BEGIN;
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;
SET LOCAL lock_timeout = '1s';
UPDATE "Account" SET "balance" = 0 WHERE "balance" IS NULL;
ALTER TABLE "Account" ALTER COLUMN "balance" SET NOT NULL;
COMMIT;
START TRANSACTION;
SET LOCAL check_function_bodies = off;
CREATE FUNCTION "touch"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW."balance" := coalesce(NEW."balance", 0); RETURN NEW; END $$;
COMMIT;
SET statement_timeout = 0;
RESET statement_timeout;
DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'Kind') THEN CREATE TYPE "Kind" AS ENUM ('A'); END IF; END $$;
CREATE TRIGGER "Account_touch" BEFORE INSERT ON "Account" FOR EACH ROW EXECUTE FUNCTION "touch"();""",
    })
    with _connect(erp_url) as conn:
        wanted = replay(conn, migrations, "public").catalog
        assert conn.execute("SHOW lock_timeout").fetchone()[0] != "1s"  # nothing of the scripts' session stays
    assert wanted.tables["Account"].columns["balance"].not_null
    assert any("touch" in str(key) for key in wanted.functions)
    assert wanted.enums == {"Kind": ("A",)}


def test_recorded_migration_that_does_not_replay_is_not_verifiable_and_the_rest_is_kept(erp_url, tmp_path, pg_major):
    migrations = history(tmp_path / "m", {
        "20250101_0000_init": 'CREATE TABLE "User" ("id" SERIAL PRIMARY KEY);',
        "20250201_0000_other_schema": 'ALTER TABLE "erp"."users" ADD COLUMN "tenantId" TEXT;',
        "20250301_0000_more": 'ALTER TABLE "User" ADD COLUMN "email" TEXT;',
    })
    with _connect(erp_url) as conn:
        done = replay(conn, migrations, "public", trusted={"20250201_0000_other_schema"})
        assert set(done.catalog.tables["User"].columns) == {"id", "email"}
        assert list(done.not_verifiable) == ["20250201_0000_other_schema"]
        assert 'schema "erp" does not exist' in done.not_verifiable["20250201_0000_other_schema"]
        with pytest.raises(ErpPipelinesError, match="20250201_0000_other_schema") as refused:
            replay(conn, migrations, "public")  # not recorded: it is about to run, and it cannot
        assert "erp_pipelines_shadow" not in str(refused.value) and "range that replays" not in str(refused.value)
