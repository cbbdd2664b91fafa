"""Examples the generated-history property found, kept as named tests (each a small hand-written folder).

Each test says which "Why" bullet of issue 16 it hits. They run the same property as
test_generated_histories.py: sync + history with the baseline at `baseline`, the result equal to the folder
applied like `prisma migrate deploy`, Prisma's `migrate status` up to date, a second run planning nothing.
The enum ones run on PostgreSQL 18 and 15 (before 17 a new enum value is unusable in its own transaction,
which is what the replay works around); the others, which do not depend on the major, on 18 only.
"""

from __future__ import annotations

import pytest

from erp_pipelines_tests.schema.test_generated_histories import check_history
from erp_pipelines_tests.support.prisma_histories import History, Migration, folder_names


def folder(*scripts: str, baseline: int = 1) -> History:
    names = folder_names(len(scripts))
    return History([Migration(n, s, ()) for n, s in zip(names, scripts, strict=True)], baseline)


@pytest.fixture
def server(pg_major: str, request: pytest.FixtureRequest):
    return request.getfixturevalue("pg_server" if pg_major == "18" else "pg15_server")


INVOICE = """-- CreateTable
CREATE TABLE "Invoice" (
    "id" TEXT NOT NULL,
    "label" TEXT,

    CONSTRAINT "Invoice_pkey" PRIMARY KEY ("id")
);
"""


# Why: "Transaction control inside a script breaks the replay."
def test_set_transaction_isolation_inside_begin_commit_replays_like_deploy_runs_it(pg_server):
    check_history(pg_server, folder(INVOICE, """-- Hand-edited: add, backfill, then NOT NULL
BEGIN;
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;
ALTER TABLE "Invoice" ADD COLUMN "backfilled" TEXT;
UPDATE "Invoice" SET "backfilled" = 'x';
ALTER TABLE "Invoice" ALTER COLUMN "backfilled" SET NOT NULL;
COMMIT;
""", baseline=2), drift=None)


ROLE = """-- CreateEnum
CREATE TYPE "Role" AS ENUM ('OWNER', 'ADMIN', 'MEMBER');

-- AlterTable
ALTER TABLE "Invoice" ADD COLUMN     "role" "Role" NOT NULL DEFAULT 'OWNER';
"""
RENAME_DANCE = """/*
  Warnings:

  - The values [ADMIN] on the enum `Role` will be removed. If these variants are still used in the database, this will fail.

*/
-- AlterEnum
BEGIN;
CREATE TYPE "Role_new" AS ENUM ('OWNER', 'MEMBER');
ALTER TABLE "Invoice" ALTER COLUMN "role" DROP DEFAULT;
ALTER TABLE "Invoice" ALTER COLUMN "role" TYPE "Role_new" USING ("role"::text::"Role_new");
ALTER TYPE "Role" RENAME TO "Role_old";
ALTER TYPE "Role_new" RENAME TO "Role";
DROP TYPE "Role_old";
ALTER TABLE "Invoice" ALTER COLUMN "role" SET DEFAULT 'OWNER';
COMMIT;
"""
ADD_VIEWER = """-- AlterEnum
ALTER TYPE "Role" ADD VALUE 'VIEWER';
"""
USE_VIEWER = """-- AlterTable
ALTER TABLE "Invoice" ALTER COLUMN "role" SET DEFAULT 'VIEWER';
"""


# Why: "Enum renames are not followed in the replay" (the value ends missing while the run reports success).
def test_enum_value_added_after_the_rename_dance_is_in_the_wanted_schema(server):
    check_history(server, folder(INVOICE, ROLE, RENAME_DANCE, ADD_VIEWER, baseline=4), drift=None)


# Why: "Enum renames are not followed in the replay" ("invalid input value for enum" when a later migration
# uses the value).
def test_enum_value_added_after_the_rename_dance_and_used_later_replays(server):
    check_history(server, folder(INVOICE, ROLE, RENAME_DANCE, ADD_VIEWER, USE_VIEWER, baseline=5), drift=None)


# Why: same, with the use applied after the baseline by the history step.
def test_enum_value_added_after_the_rename_dance_is_usable_by_a_later_migration(pg_server):
    check_history(pg_server, folder(INVOICE, ROLE, RENAME_DANCE, ADD_VIEWER, USE_VIEWER, baseline=4), drift=None)


AUDIT_EVENT = """-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "audit";

-- CreateTable
CREATE TABLE "audit"."Event" (
    "id" SERIAL NOT NULL,
    "label" TEXT,

    CONSTRAINT "Event_pkey" PRIMARY KEY ("id")
);
"""
AUDIT_INDEX = """-- CreateIndex
CREATE UNIQUE INDEX "Event_label_key" ON "audit"."Event"("label");
"""


# Why: "The replay is not isolated from live objects": a second-schema table applied after the baseline is
# replayed by tables_present while the live one exists.
def test_table_of_a_second_schema_applied_after_the_baseline_passes_tables_present(pg_server):
    check_history(pg_server, folder(INVOICE, AUDIT_EVENT, AUDIT_INDEX, baseline=1), drift=None)


LEVEL = """-- CreateEnum
CREATE TYPE "Level" AS ENUM ('LOW', 'MEDIUM', 'HIGH');

-- AlterTable
ALTER TABLE "Invoice" ADD COLUMN     "level" "Level" NOT NULL DEFAULT 'LOW';
"""
RENAME_LOW = """-- AlterEnum
ALTER TYPE "Level" RENAME VALUE 'LOW' TO 'LOW_0';
"""


# Why: "Enum renames are not followed in the replay": the column default follows its value's new name
# ("invalid input value for enum" when the sync planned DEFAULT 'LOW' next to a type with only 'LOW_0').
def test_enum_value_renamed_while_it_is_a_column_default_keeps_the_default_on_the_new_name(server):
    check_history(server, folder(INVOICE, LEVEL, RENAME_LOW, baseline=3), drift=None)


LEGACY_REF = """-- Hand-written: add the column only where it is missing
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '"public"."Invoice"'::regclass
                 AND attname = 'legacyRef' AND NOT attisdropped) THEN
    ALTER TABLE "public"."Invoice" ADD COLUMN "legacyRef" TEXT;
  END IF;
END
$$;
"""


# Why: "DO blocks run as written" and "The replay is not isolated from live objects": a DO body naming the
# table with its schema acts on the throw-away schema, not on the live one (where the table is missing).
def test_do_block_naming_a_table_with_its_schema_replays_in_the_throwaway_schema(pg_server):
    check_history(pg_server, folder(INVOICE, LEGACY_REF, baseline=2), drift=None)


# Why: "another schema" (issue 16, Why 1 and 4): a second-schema table created inside the baseline range is
# created by the sync, as `migrate deploy` would have, so a later migration altering it applies.
def test_table_of_a_second_schema_created_in_the_baseline_range_is_created_by_the_sync(pg_server):
    check_history(pg_server, folder(INVOICE, AUDIT_EVENT, AUDIT_INDEX, baseline=2), drift=None)
