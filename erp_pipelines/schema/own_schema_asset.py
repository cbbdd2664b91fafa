"""`pipeline_state`: our own schema (ledger, pruned days, invalidation log) and the change-capture triggers.

Part of the `schema` group, after `erp_schema` (the raw tables must exist before a trigger can be put on
them), so `schema_sync_job` and a fresh `make run` install it. Idempotent: a second run changes nothing and
takes no lock on ERP tables. Opt-out (`change_capture: false` in the run config, or
ERP_PIPELINES_CHANGE_CAPTURE=off): the schema and its tables are still installed, and capture triggers of
ours that an earlier run installed are dropped; the nightly lookback and retention's fingerprint gate remain
the net for late changes (docs/change_capture.md).
"""

import dagster as dg
import psycopg
from pydantic import Field

from erp_pipelines import own_schema
from erp_pipelines.capture import triggers
from erp_pipelines.capture.targets import CHANGE_CAPTURE_ENV, capture_targets, change_capture_enabled
from erp_pipelines.errors import DatabaseUnavailable, ErpPipelinesError, is_connection_lost, user_errors
from erp_pipelines.resources import ErpDatabase


class PipelineStateConfig(dg.Config):
    change_capture: bool | None = Field(
        default=None,
        description=f"Install the change-capture triggers on the raw tables. Unset: {CHANGE_CAPTURE_ENV} "
        "(on unless it is `off`). false: no trigger (any of ours is dropped); the nightly lookback and "
        "retention's fingerprint gate remain the net for late changes.",
    )


@dg.asset(
    group_name="schema",
    kinds={"postgres"},
    pool="erp_db",
    deps=["erp_schema"],
)
def pipeline_state(
    context: dg.AssetExecutionContext, config: PipelineStateConfig, erp_db: ErpDatabase
) -> dg.MaterializeResult:
    """Our schema `erp_pipelines` (rollup ledger, pruned days, invalidation log) and the capture triggers
    that mark each (raw table, UTC day) the ERP inserts, updates or deletes."""
    with user_errors():
        return _install(context, config, erp_db)


def _install(context: dg.AssetExecutionContext, config: PipelineStateConfig, erp_db: ErpDatabase) -> dg.MaterializeResult:
    enabled = change_capture_enabled(config.change_capture)
    schema = own_schema.own_schema_name()
    targets = capture_targets()
    try:
        with erp_db.connect("pipeline-state") as conn, conn.transaction():
            if enabled:
                report = triggers.install(conn, erp_db.db_schema, targets, schema)
            else:
                own_schema.install(conn, erp_db.db_schema, schema)
                report = triggers.uninstall(conn, schema)
            present = triggers.installed(conn, schema)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise ErpPipelinesError(
            f"The pipelines role may not install our schema or the capture triggers: {exc.diag.message_primary}.",
            where=f"schema {schema} and the raw tables {', '.join(t.raw_table for t in targets)} "
            f"({erp_db.safe_url()})",
            fix="Run pipeline_state (schema_sync_job) as the role that owns the raw tables and has CREATE on the "
            "database, the sync role: `erp-pipelines grants --role NAME --for sync` prints its grants "
            "(docs/privileges.md says why a TRIGGER grant is not enough: re-enabling or dropping a trigger is the "
            "table owner's alone). Or opt out with change_capture: false. Nothing was changed.",
        ) from None
    except psycopg.errors.LockNotAvailable:
        raise ErpPipelinesError(
            "An app transaction held a raw table longer than lock_timeout, so the capture trigger was not "
            "created (nothing was changed).",
            where=f"raw tables {', '.join(t.raw_table for t in targets)}",
            fix="Re-run the step; if it keeps failing, run it when the app writes less, or raise lock_timeout_ms.",
        ) from None
    except psycopg.OperationalError as exc:
        if not is_connection_lost(exc):
            raise
        raise DatabaseUnavailable(
            f"The connection was lost while installing our schema ({str(exc).strip()}); nothing was changed.",
            where=f"ERP_DATABASE_URL = {erp_db.safe_url()}",
            fix="Nothing, if the server is back: the step is retried.",
        ) from None
    if report.tables_missing:
        context.log.warning(
            f"No capture trigger on {', '.join(report.tables_missing)}: the table is missing from schema "
            f"{erp_db.db_schema}. Run erp_schema first (its rollups cannot run either)."
        )
    if report.triggers_enabled:
        context.log.warning(
            f"{len(report.triggers_enabled)} capture trigger(s) were disabled (ALTER TABLE ... DISABLE TRIGGER) "
            f"and are enabled again: {', '.join(report.triggers_enabled)}. Changes written meanwhile were not "
            "marked; retention's fingerprint gate asks for their days' refresh before it deletes anything."
        )
    context.log.info(
        f"Our schema {schema}: change capture {'on' if enabled else 'off'}; "
        f"{len(report.triggers_created)} trigger(s) created, {len(report.triggers_enabled)} enabled again, "
        f"{len(report.triggers_dropped)} dropped, "
        f"{len(report.functions_written)} function(s) written, {len(present)} capture trigger(s) in place."
    )
    return dg.MaterializeResult(
        metadata={
            "own_schema": dg.MetadataValue.text(schema),
            "tables": dg.MetadataValue.json(["rollup_ledger", "pruned_days", "invalidations"]),
            "change_capture": dg.MetadataValue.bool(enabled),
            "capture_triggers": dg.MetadataValue.json([f"{s}.{t}.{n}" for s, t, n in present]),
            "triggers_created": dg.MetadataValue.json(report.triggers_created),
            "triggers_enabled": dg.MetadataValue.json(report.triggers_enabled),
            "triggers_dropped": dg.MetadataValue.json(report.triggers_dropped),
            "functions_written": dg.MetadataValue.json(report.functions_written),
            "raw_tables_missing": dg.MetadataValue.json(report.tables_missing),
            "changed": dg.MetadataValue.bool(report.changed),
        }
    )
