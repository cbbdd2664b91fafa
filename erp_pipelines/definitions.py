"""The project's Definitions: assembles each domain's definitions and the shared resources. No logic here."""

import dagster as dg

from erp_pipelines.resources import erp_database_from_env, migrations_folder_from_env
from erp_pipelines.schema.definitions import defs as schema_defs


def _domain_defs() -> list[dg.Definitions]:
    found = [schema_defs]
    for module in ("erp_pipelines.rollups.definitions", "erp_pipelines.retention.definitions",
                   "erp_pipelines.automation.definitions"):
        try:
            found.append(__import__(module, fromlist=["defs"]).defs)
        except ModuleNotFoundError:
            pass
    return found


defs = dg.Definitions.merge(
    *_domain_defs(),
    dg.Definitions(resources={"erp_db": erp_database_from_env(), "migrations": migrations_folder_from_env()}),
)
