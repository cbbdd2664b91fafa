"""The project's Definitions: assembles each domain's definitions and the shared resources. No logic here."""

import dagster as dg

from erp_pipelines.automation.definitions import defs as automation_defs
from erp_pipelines.resources import erp_database_from_env, migrations_folder_from_env
from erp_pipelines.retention.definitions import defs as retention_defs
from erp_pipelines.rollups.definitions import defs as rollups_defs
from erp_pipelines.schema.definitions import defs as schema_defs

defs = dg.Definitions.merge(
    schema_defs,
    rollups_defs,
    retention_defs,
    automation_defs,
    dg.Definitions(resources={"erp_db": erp_database_from_env(), "migrations": migrations_folder_from_env()}),
)
