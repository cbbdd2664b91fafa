"""Helpers of the change-capture tests: read the invalidation log, install the triggers, run a sensor's request."""

from __future__ import annotations

from datetime import date

import dagster as dg
import psycopg

from erp_pipelines.capture import triggers
from erp_pipelines.capture.targets import CaptureTarget, capture_targets
from erp_pipelines.defs_factory import build_defs
from erp_pipelines.resources import ErpDatabase

# INSERT, UPDATE and DELETE triggers on every captured raw table (one per rollup instance's raw table)
CAPTURE_TRIGGERS = 3 * len(capture_targets())


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


def run_request(
    erp_url: str, instance: dg.DagsterInstance, request: dg.RunRequest, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    """Execute a late-data RunRequest as the daemon would: its job, partition, assets and tags."""
    job = build_defs(ErpDatabase(url=erp_url)).resolve_job_def("rollup_refresh_job")
    return job.execute_in_process(
        instance=instance,
        partition_key=request.partition_key,
        asset_selection=request.asset_selection,
        tags=request.tags,
        raise_on_error=raise_on_error,
    )
