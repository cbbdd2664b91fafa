"""The schema domain's definitions: its three assets and `schema_sync_job`."""

import dagster as dg

from erp_pipelines.schema.assets import erp_schema, prisma_migration_history, system_health_config
from erp_pipelines.schema.own_schema_asset import pipeline_state

schema_sync_job = dg.define_asset_job(
    "schema_sync_job",
    selection=dg.AssetSelection.groups("schema"),
    # A lost connection (server restart, terminated backend) raises DatabaseUnavailable, a retryable
    # Failure: retried with backoff. User errors are Failure(allow_retries=False) and fail at once.
    op_retry_policy=dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
    description="Sync the schema to the baseline, record Prisma's migration history, initialise the config row.",
)

defs = dg.Definitions(
    assets=[erp_schema, prisma_migration_history, system_health_config, pipeline_state],
    jobs=[schema_sync_job],
)
