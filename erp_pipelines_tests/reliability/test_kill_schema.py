"""Kill -9 the run process, or terminate its backend, in the middle of a schema sync and of a post-baseline
migration. Afterwards the database is exactly as before the step (never in between), and the next run ends
where a run that never crashed ends."""

from __future__ import annotations

import dagster as dg
import psycopg
import pytest

from erp_pipelines.demo.state import load_drifted_state
from erp_pipelines.resources import ErpDatabase, PrismaMigrationsFolder
from erp_pipelines.schema.assets import erp_schema, prisma_migration_history, system_health_config
from erp_pipelines_tests.support.databases import new_database
from erp_pipelines_tests.support.processes import (
    finish,
    spawn,
    strike,
    wait_backend_gone,
    wait_for_blocked_backend,
)
from erp_pipelines_tests.support.snapshots import full_snapshot

SCHEMA_ASSETS = [erp_schema, prisma_migration_history, system_health_config]

CHILD = """
import dagster as dg
from erp_pipelines.resources import ErpDatabase, PrismaMigrationsFolder
from erp_pipelines.schema.assets import erp_schema, prisma_migration_history, system_health_config
ASSETS = {{"all": [erp_schema, prisma_migration_history, system_health_config],
          "history": [prisma_migration_history]}}
# lock_timeout far above the test's safety limit: the step must wait where the test holds it.
db = ErpDatabase(url=dg.EnvVar("ERP_DATABASE_URL"), lock_timeout_ms=600000)
result = dg.materialize(ASSETS[{which!r}], resources={{"erp_db": db, "migrations": PrismaMigrationsFolder()}},
                        raise_on_error=False)
raise SystemExit(0 if result.success else 3)
"""


def run_schema(url: str, assets=None) -> dg.ExecuteInProcessResult:
    resources = {"erp_db": ErpDatabase(url=url), "migrations": PrismaMigrationsFolder()}
    return dg.materialize(assets or SCHEMA_ASSETS, resources=resources)


def clean_run_snapshot(pg_server, drifted: bool) -> tuple:
    """The end state of a run that never crashed, on another fresh database."""
    url = new_database(pg_server)
    with psycopg.connect(url, autocommit=True) as c:
        if drifted:
            load_drifted_state(c)
        run_schema(url)
        return full_snapshot(c)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill9", "terminate_backend"])
def test_crash_in_the_middle_of_the_schema_sync_leaves_the_database_as_before(how, pg_server, erp_url, conn):
    load_drifted_state(conn)
    before = full_snapshot(conn)
    # The app holds system_health_config: the sync creates the missing tables, then waits on its ALTER TABLE.
    with psycopg.connect(erp_url) as app:
        app.execute("LOCK TABLE system_health_config IN ACCESS SHARE MODE")
        proc = spawn(CHILD.format(which="all"), env={"ERP_DATABASE_URL": erp_url})
        backend = wait_for_blocked_backend(conn, "erp-pipelines:schema-sync", proc)
        in_flight = conn.execute(
            "SELECT backend_xid IS NOT NULL, query FROM pg_stat_activity WHERE pid = %s", (backend,)
        ).fetchone()
        assert in_flight[0], "the sync should be inside a transaction that already wrote (CREATE TABLEs)"
        assert "system_health_config" in in_flight[1]
        strike(how, proc, conn, backend)
        app.rollback()
    wait_backend_gone(conn, backend)
    code, out, err = finish(proc)
    assert code != 0
    if how == "terminate_backend":
        assert "connection to the ERP database was lost during the schema sync" in err + out
    assert full_snapshot(conn) == before

    run_schema(erp_url)
    assert full_snapshot(conn) == clean_run_snapshot(pg_server, drifted=True)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill9", "terminate_backend"])
def test_crash_in_the_middle_of_a_post_baseline_migration_leaves_no_row_and_no_table(how, pg_server, erp_url, conn):
    run_schema(erp_url, [erp_schema])
    # The app writes to clients: the migration creates report_exports and its index, then waits to add the FK.
    with psycopg.connect(erp_url) as app:
        app.execute("LOCK TABLE clients IN ROW EXCLUSIVE MODE")
        proc = spawn(CHILD.format(which="history"), env={"ERP_DATABASE_URL": erp_url})
        backend = wait_for_blocked_backend(conn, "erp-pipelines:prisma-migrate", proc)
        assert "report_exports_client_id_fkey" in conn.execute(
            "SELECT query FROM pg_stat_activity WHERE pid = %s", (backend,)
        ).fetchone()[0]
        # The baseline rows were committed by the step's previous transaction: that is the "before" state.
        before = full_snapshot(conn)
        assert [r[0] for r in before[1]] == ["20250901_0000_init_users", "20250926_add_roles_table",
                                             "20251015_0000_add_clients", "20251201_0000_baseline_init"]
        strike(how, proc, conn, backend)
        app.rollback()
    wait_backend_gone(conn, backend)
    code, out, err = finish(proc)
    assert code != 0
    if how == "terminate_backend":
        assert "connection was lost while applying migration 20251215_0000_add_report_exports" in err + out
    assert full_snapshot(conn) == before
    assert conn.execute("SELECT to_regclass('report_exports')").fetchone()[0] is None

    run_schema(erp_url)
    assert full_snapshot(conn) == clean_run_snapshot(pg_server, drifted=False)
