"""Helpers of the change-capture tests: read the invalidation log, install the triggers, run a sensor's request."""

from __future__ import annotations

from datetime import date

import dagster as dg
import psycopg

from erp_pipelines.automation.definitions import defs as automation_defs
from erp_pipelines.capture import triggers
from erp_pipelines.capture.targets import CaptureTarget, capture_targets
from erp_pipelines.resources import ErpDatabase, PrismaMigrationsFolder
from erp_pipelines.retention.definitions import defs as retention_defs
from erp_pipelines.rollups.definitions import defs as rollup_defs
from erp_pipelines.schema.definitions import defs as schema_defs


def marks(conn: psycopg.Connection) -> list[tuple[str, date]]:
    """The distinct (raw_table, day) pairs in the invalidation log, sorted."""
    return [tuple(r) for r in conn.execute(
        "SELECT DISTINCT raw_table, day FROM erp_pipelines.invalidations ORDER BY 1, 2"
    ).fetchall()]


def install_capture(
    conn: psycopg.Connection, targets: tuple[CaptureTarget, ...] | None = None
) -> triggers.CaptureReport:
    with conn.transaction():
        return triggers.install(conn, "public", targets if targets is not None else capture_targets())


def capture_catalog(conn: psycopg.Connection) -> list[tuple]:
    """Our triggers and functions as the catalog holds them (oids included): equal means nothing changed."""
    return conn.execute(
        "SELECT t.oid, t.tgname, t.tgrelid::regclass::text, p.oid, p.prosrc, p.proconfig, p.prosecdef "
        "FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
        "WHERE t.tgname LIKE 'erp_pipelines_capture_%' ORDER BY t.tgname"
    ).fetchall()


def full_defs(erp_url: str) -> dg.Definitions:
    """What erp_pipelines/definitions.py assembles, with this test's database."""
    resources = {"erp_db": ErpDatabase(url=erp_url), "migrations": PrismaMigrationsFolder()}
    return dg.Definitions.merge(
        schema_defs, rollup_defs, retention_defs, automation_defs, dg.Definitions(resources=resources)
    )


def run_request(
    erp_url: str, instance: dg.DagsterInstance, request: dg.RunRequest, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    """Execute a late-data RunRequest as the daemon would: its job, partition, assets and tags."""
    job = full_defs(erp_url).resolve_job_def("rollup_refresh_job")
    return job.execute_in_process(
        instance=instance,
        partition_key=request.partition_key,
        asset_selection=request.asset_selection,
        tags=request.tags,
        raise_on_error=raise_on_error,
    )
