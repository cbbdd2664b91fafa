"""`build_defs(...)`: the one place the project's Definitions are assembled from its domains and resources.

Why a factory: `erp_pipelines.definitions` must hold exactly one Definitions object at module scope (so
`dagster definitions validate -m erp_pipelines.definitions` and `dagster dev -m ...` load it without
`-a defs`), and the tests and `make run`'s runner need the same graph with other resources. Merging the
domains inside a function keeps their Definitions objects out of that module's namespace.
"""

from __future__ import annotations

import dagster as dg

from erp_pipelines.resources import (
    ErpDatabase,
    PrismaMigrationsFolder,
    erp_database_from_env,
    migrations_folder_from_env,
)


def build_defs(
    erp_db: ErpDatabase | None = None, migrations: PrismaMigrationsFolder | None = None
) -> dg.Definitions:
    """Every domain's assets, checks, jobs, schedules and sensors, with these resources.

    Defaults come from the environment (ERP_DATABASE_URL, PRISMA_MIGRATIONS_DIR) as `dg.EnvVar`s, read
    when a run starts, not at import.
    """
    from erp_pipelines.automation import definitions as automation
    from erp_pipelines.retention import definitions as retention
    from erp_pipelines.rollups import definitions as rollups
    from erp_pipelines.schema import definitions as schema

    resources = {
        "erp_db": erp_db if erp_db is not None else erp_database_from_env(),
        "migrations": migrations if migrations is not None else migrations_folder_from_env(),
    }
    return dg.Definitions.merge(
        schema.defs, rollups.defs, retention.defs, automation.defs, dg.Definitions(resources=resources)
    )
