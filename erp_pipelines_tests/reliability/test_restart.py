"""The database restarts while a step runs: the step fails with a clear message, and a Dagster RetryPolicy with
exponential backoff gets it through once the server is back. Also: Dagster's own storage is unreachable.

The restart uses a server of its own (not the session's), so stopping it disturbs no other test.
"""

from __future__ import annotations

import subprocess
import threading
import time

import dagster as dg
import psycopg
import pytest

from erp_pipelines.demo.state import load_drifted_state
from erp_pipelines.embedded import PROJECT_ROOT, ensure_database
from erp_pipelines.resources import ErpDatabase, PrismaMigrationsFolder
from erp_pipelines.schema.assets import erp_schema, prisma_migration_history, system_health_config
from erp_pipelines_tests.support.commands import dagster, erp_pipelines, exported
from erp_pipelines_tests.support.databases import embedded_server
from erp_pipelines_tests.support.processes import SAFETY_TIMEOUT_S, wait_for_blocked_backend
from erp_pipelines_tests.support.snapshots import full_snapshot

# What we recommend declaring on every asset that talks to the ERP database (see the report / docs).
RETRY = dg.RetryPolicy(max_retries=6, delay=0.2, backoff=dg.Backoff.EXPONENTIAL)


@pytest.fixture(scope="module")
def own_server():
    with embedded_server("pg-restart") as server:
        yield server


def _events(instance: dg.DagsterInstance, run_id: str, kind: str) -> list:
    return [e for e in instance.all_logs(run_id) if e.dagster_event and e.dagster_event.event_type_value == kind]


def _error_text(event) -> str:
    data = event.dagster_event.event_specific_data
    parts = [getattr(getattr(data, "user_failure_data", None), "description", None) or ""]
    error = data.error
    while error is not None:
        parts.append(error.message)
        error = error.cause
    return "\n".join(p for p in parts if p)


@pytest.mark.slow
def test_restart_during_the_schema_sync_is_retried_until_the_server_is_back(own_server, tmp_path):
    ensure_database(own_server.get_uri(), "restart_a")
    ensure_database(own_server.get_uri(), "restart_b")
    url, clean_url = own_server.get_uri("restart_a"), own_server.get_uri("restart_b")
    with psycopg.connect(url, autocommit=True) as c:
        load_drifted_state(c)
    resources = {"erp_db": ErpDatabase(url=url, lock_timeout_ms=600000, connect_timeout_s=2),
                 "migrations": PrismaMigrationsFolder()}
    job = dg.Definitions(
        assets=[erp_schema, prisma_migration_history, system_health_config],
        jobs=[dg.define_asset_job("sync_with_retries", op_retry_policy=RETRY)],
        resources=resources,
    ).resolve_job_def("sync_with_retries")

    outcome: dict = {}
    with dg.instance_for_test() as instance:
        app = psycopg.connect(url)
        app.execute("LOCK TABLE system_health_config IN ACCESS SHARE MODE")  # the sync blocks mid-transaction
        runner = threading.Thread(
            target=lambda: outcome.setdefault("result", job.execute_in_process(instance=instance, raise_on_error=False))
        )
        runner.start()
        with psycopg.connect(url, autocommit=True) as watcher:
            wait_for_blocked_backend(watcher, "erp-pipelines:schema-sync")
        own_server.stop()  # fast shutdown: every backend is terminated, the sync's transaction is lost
        app.close()
        run_id = instance.get_runs()[0].run_id
        # While the server is down the retries fail to connect; wait for two of them, then bring it back.
        deadline = time.monotonic() + SAFETY_TIMEOUT_S
        while len(_events(instance, run_id, "STEP_UP_FOR_RETRY")) < 2:
            assert time.monotonic() < deadline and runner.is_alive(), "no retries seen"
            time.sleep(0.05)
        own_server.ensure_postgres_running()
        runner.join(SAFETY_TIMEOUT_S)
        assert not runner.is_alive()
        result = outcome["result"]
        assert result.success
        retries = _events(instance, run_id, "STEP_UP_FOR_RETRY")
        messages = [_error_text(e) for e in retries]
        assert "connection to the ERP database was lost during the schema sync" in messages[0]
        assert "nothing was changed" in messages[0]
        assert any("Cannot connect to the ERP database" in m for m in messages[1:])
        assert all("Traceback" not in m for m in messages)

    with psycopg.connect(clean_url, autocommit=True) as c:
        load_drifted_state(c)
    dg.materialize([erp_schema, prisma_migration_history, system_health_config],
                   resources={"erp_db": ErpDatabase(url=clean_url), "migrations": PrismaMigrationsFolder()})
    with psycopg.connect(url, autocommit=True) as a, psycopg.connect(clean_url, autocommit=True) as b:
        assert full_snapshot(a) == full_snapshot(b)


STORAGE_PASSWORD = "Dag5ter-St0rage-Pw"
UNREACHABLE_STORAGE = f"postgresql+psycopg2://dagster:{STORAGE_PASSWORD}@127.0.0.1:1/dagster?connect_timeout=2"


def start_with_unreachable_storage(path: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Start the project the way `path` does, with Dagster's storage on a port nobody listens on."""
    if path == "erp-pipelines run":
        return erp_pipelines("run", "--events", "1000", "--days", "2", env=env)
    if path == "make dev":  # the Makefile's recipe (checked below): `erp-pipelines dev ARGS`
        return erp_pipelines("dev", "--host", "127.0.0.1", "--port", "3999", env=env)
    exports = exported(erp_pipelines("env", env=env).stdout)  # what `eval "$(erp-pipelines env)"` sets
    assert exports["DAGSTER_PG_PASSWORD"] == STORAGE_PASSWORD and "DAGSTER_PG_URL" not in exports
    return dagster("asset", "materialize", "-m", "erp_pipelines.definitions", "--select", "erp_schema", env=exports)


@pytest.mark.slow
@pytest.mark.parametrize("path", ["erp-pipelines run", "make dev", "dagster CLI"])
def test_unreachable_dagster_storage_is_a_clear_error_without_the_password_and_the_erp_database_is_untouched(
    path, erp_url, conn, tmp_path
):
    load_drifted_state(conn)
    before = full_snapshot(conn)
    env = {
        "ERP_DATABASE_URL": erp_url,
        "DAGSTER_PG_URL": UNREACHABLE_STORAGE,
        "ERP_PIPELINES_STATE_DIR": str(tmp_path / "state"),
    }
    done = start_with_unreachable_storage(path, env)
    text = done.stdout + done.stderr
    assert done.returncode != 0
    assert STORAGE_PASSWORD not in text
    assert "127.0.0.1" in text and ("refused" in text or "could not connect" in text.lower()), text[-3000:]
    if path != "dagster CLI":  # ours: one message, no traceback
        assert done.returncode == 2 and "Traceback" not in text, text[-3000:]
        assert "Cannot connect to Dagster's storage database" in text
    if path == "make dev":
        assert "$(BIN)/erp-pipelines dev " in (PROJECT_ROOT / "Makefile").read_text()
    assert full_snapshot(conn) == before
    # No ERP connection was ever opened by the failed start.
    assert conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'erp-pipelines%%'"
    ).fetchone()[0] == 0
