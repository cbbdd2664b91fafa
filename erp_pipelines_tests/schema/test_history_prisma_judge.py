"""Prisma itself judges `_prisma_migrations`: `prisma migrate status` (the real CLI) after the schema group runs."""

from __future__ import annotations

import dagster as dg

from erp_pipelines.resources import DEMO_MIGRATIONS_DIR, ErpDatabase, PrismaMigrationsFolder
from erp_pipelines.schema.assets import erp_schema, prisma_migration_history, system_health_config
from erp_pipelines_tests.support.prisma_cli import UP_TO_DATE, assert_prisma_up_to_date, migrate_status


def test_prisma_sees_every_demo_migration_pending_on_an_empty_database_and_none_after_the_run(erp_url, pg_major):
    code, output = migrate_status(erp_url, DEMO_MIGRATIONS_DIR)
    assert code != 0 and "have not yet been applied" in output and "20251201_0000_baseline_init" in output
    dg.materialize([erp_schema, prisma_migration_history, system_health_config],
                   resources={"erp_db": ErpDatabase(url=erp_url), "migrations": PrismaMigrationsFolder()})
    assert_prisma_up_to_date(erp_url, DEMO_MIGRATIONS_DIR)


def test_prisma_cli_reads_history_of_a_non_public_schema_from_a_schema_url_parameter(erp_url, conn):
    conn.execute('CREATE SCHEMA "erp x"; CREATE TABLE "erp x"._prisma_migrations (id text)')
    code, output = migrate_status(erp_url + ("&" if "?" in erp_url else "?") + "schema=erp%20x", DEMO_MIGRATIONS_DIR)
    # Prisma read the table of "erp x" (it lacks Prisma's columns), not public (absent: "not yet applied").
    assert code != 0 and "checksum" in output and UP_TO_DATE not in output, output
