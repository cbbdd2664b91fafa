"""Prisma itself judges our objects: `prisma migrate status` (the real CLI) stays up to date once our schema,
the invalidation log, the capture functions and the triggers on the ERP's tables are installed and firing."""

from __future__ import annotations

from datetime import date

import dagster as dg

from erp_pipelines.resources import DEMO_MIGRATIONS_DIR, ErpDatabase, PrismaMigrationsFolder
from erp_pipelines.schema.assets import erp_schema, prisma_migration_history, system_health_config
from erp_pipelines.schema.own_schema_asset import pipeline_state
from erp_pipelines_tests.support.capture import CAPTURE_TRIGGERS, capture_catalog, marks
from erp_pipelines_tests.support.erp_data import insert_samples
from erp_pipelines_tests.support.prisma_cli import assert_prisma_up_to_date
from erp_pipelines_tests.support.raw_rows import at


def test_prisma_migrate_status_stays_up_to_date_with_capture_installed(erp_url, conn):
    resources = {"erp_db": ErpDatabase(url=erp_url), "migrations": PrismaMigrationsFolder()}
    dg.materialize([erp_schema, prisma_migration_history, system_health_config, pipeline_state], resources=resources)
    assert len(capture_catalog(conn)) == CAPTURE_TRIGGERS
    insert_samples(conn, [(100, None, 10, 1, at(date(2025, 3, 1), 8))])
    assert marks(conn) == [("system_metric_samples", date(2025, 3, 1))]
    assert_prisma_up_to_date(erp_url, DEMO_MIGRATIONS_DIR)
