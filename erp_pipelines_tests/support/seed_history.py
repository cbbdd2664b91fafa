"""The seed ERP's history shape, written as our own fixture: the demo folder, then two later migrations the
operator recorded by hand (`mark_applied`): one altering a table in a schema this database does not have
(`"erp"."users"`), one data fix that replays (no structural effect)."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg

from erp_pipelines.resources import DEMO_MIGRATIONS_DIR, ErpDatabase, PrismaMigrationsFolder
from erp_pipelines.schema.assets import erp_schema, prisma_migration_history, system_health_config

OTHER_SCHEMA_MIGRATION = "20251220_0000_users_tenant_in_erp_schema"
BY_HAND_MIGRATION = "20251221_0000_backfill_roles_by_hand"
SEED_LATER = {
    OTHER_SCHEMA_MIGRATION: '-- AlterTable\nALTER TABLE "erp"."users" ADD COLUMN "tenantId" TEXT;\n',
    BY_HAND_MIGRATION: "-- Data fix, run by hand by the operator\n"
    "UPDATE \"roles\" SET \"description\" = 'legacy role' WHERE \"description\" IS NULL;\n",
}


def seed_folder(root: Path) -> Path:
    """A copy of the demo folder with the seed's two later, hand-recorded migrations."""
    shutil.copytree(DEMO_MIGRATIONS_DIR, root)
    for name, script in SEED_LATER.items():
        (root / name).mkdir()
        (root / name / "migration.sql").write_text(script)
    return root


def run_schema_sync(url: str, folder: Path, history_config: dict | None = None,
                    sync_config: dict | None = None) -> dg.ExecuteInProcessResult:
    """erp_schema, prisma_migration_history and system_health_config with their checks (schema_sync_job's
    selection), real Dagster, never raising."""
    ops = {}
    if history_config:
        ops["prisma_migration_history"] = {"config": history_config}
    if sync_config:
        ops["erp_schema"] = {"config": sync_config}
    return dg.materialize(
        [erp_schema, prisma_migration_history, system_health_config],
        resources={"erp_db": ErpDatabase(url=url), "migrations": PrismaMigrationsFolder(path=str(folder))},
        run_config={"ops": ops} if ops else None,
        raise_on_error=False,
    )
