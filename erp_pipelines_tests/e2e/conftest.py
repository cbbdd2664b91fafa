"""The end-to-end stack: an embedded PostgreSQL of its own, the seed's drifted ERP, and `dagster dev`.

`dagster_stack` (one per module) starts PostgreSQL 18 in a temporary folder, loads the drifted production
state and eight days of demo usage/health data into `erp`, then starts `dagster dev` (webserver + daemon,
the daemon is what runs queued runs, sensors and backfills) on a free localhost port against that
server's `dagster` database. It waits until the webserver answers, the code location has loaded and the
daemon's startup work (first sensor ticks and the runs they request) is done, and always tears everything
down: `dagster dev` and every process it started, then the database.

`pipeline` drives the two things an operator does through the GraphQL API: run `schema_sync_job`, then
backfill the last seven complete UTC days of both rollups. It waits for both to finish and hands back
their ids and outcomes; the tests assert on them.

Nothing is mocked. The processes' output goes to `dagster-dev.log`, copied to
`<repo>/test-output/e2e/dagster-dev.log` (git-ignored) so a failure can be read after the run.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import requests
from dagster_graphql import DagsterGraphQLClient

from erp_pipelines.demo.generate import generate_demo_data
from erp_pipelines.demo.state import load_drifted_state
from erp_pipelines.embedded import start
from erp_pipelines_tests.support.e2e_stack import (
    BACKFILL_STATUS,
    BACKFILL_TERMINAL,
    BACKFILL_TIMEOUT_S,
    DATA_DAYS,
    LAUNCH_BACKFILL,
    PARTITION_HISTORY_DAYS,
    REPO_ROOT,
    ROLLUP_ASSETS,
    RUN_TERMINAL,
    RUN_TIMEOUT_S,
    SCHEMA_SYNC_JOB,
    SERVER_TIMEOUT_S,
    TEST_OUTPUT,
    DagsterStack,
    PipelineResult,
    dagster_executable,
    free_port,
    run_failures,
    stack_env,
    stop_process_tree,
    wait_for,
    wait_for_code_location,
    wait_for_daemon_startup,
)


@pytest.fixture(scope="module")
def dagster_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterStack]:
    root = tmp_path_factory.mktemp("e2e")
    t0 = time.monotonic()
    today = datetime.now(UTC).date()
    server, urls = start(state_dir=root / "state", keep_running=False)
    proc: subprocess.Popen | None = None
    log_path = root / "dagster-dev.log"
    try:
        with psycopg.connect(urls.erp, autocommit=True) as conn:
            assert load_drifted_state(conn), "the fresh database was expected to be empty"
            counts = generate_demo_data(conn, days=DATA_DAYS, events=5000, clients=5, modules=4,
                                        end_day=today - timedelta(days=1), progress=lambda _m: None)
        print(f"\n[e2e] demo data: {counts}")

        port = free_port()
        cmd = [dagster_executable(), "dev", "-h", "127.0.0.1", "-p", str(port),
               "-w", str(REPO_ROOT / "workspace.yaml")]
        env = stack_env(urls.env(), today - timedelta(days=PARTITION_HISTORY_DAYS))
        with log_path.open("wb") as log:
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        print(f"[e2e] dagster dev on http://127.0.0.1:{port} (pid {proc.pid}), log {log_path}")
        stack = DagsterStack(port=port, erp_url=urls.erp, client=DagsterGraphQLClient("127.0.0.1", port_number=port),
                             log_path=log_path, location_name="", repository_name="", today=today, process=proc)
        wait_for("the webserver's /server_info",
                 lambda: requests.get(f"{stack.base_url}/server_info", timeout=5).ok,
                 SERVER_TIMEOUT_S, alive=stack.check_alive)
        stack.location_name, stack.repository_name = wait_for_code_location(stack)
        # The "Join the Dagster community" dialog covers every page on localhost until this is set.
        stack.graphql("mutation SetNuxSeen { setNuxSeen }")
        wait_for_daemon_startup(stack)
        print(f"[e2e] stack ready after {time.monotonic() - t0:.0f} s (code location loaded, startup sensor runs done)")
        yield stack
    finally:
        if proc is not None:
            stop_process_tree(proc)
        if log_path.exists():
            (TEST_OUTPUT / "e2e").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log_path, TEST_OUTPUT / "e2e" / "dagster-dev.log")
        server.cleanup()


@pytest.fixture(scope="module")
def pipeline(dagster_stack: DagsterStack) -> PipelineResult:
    """Run schema_sync_job, then backfill the rollups' last seven complete days, both through GraphQL."""
    stack = dagster_stack
    t0 = time.monotonic()
    run_id = stack.client.submit_job_execution(SCHEMA_SYNC_JOB)

    def run_done() -> str | None:
        status = stack.client.get_run_status(run_id).value
        return status if status in RUN_TERMINAL else None

    run_status = wait_for(f"run {run_id} of {SCHEMA_SYNC_JOB} to finish", run_done, RUN_TIMEOUT_S,
                          alive=stack.check_alive)
    failures = run_failures(stack, run_id) if run_status != "SUCCESS" else ""
    print(f"[e2e] {SCHEMA_SYNC_JOB} run {run_id}: {run_status} after {time.monotonic() - t0:.0f} s")
    t0 = time.monotonic()

    partitions = stack.backfill_partitions
    launched = stack.graphql(LAUNCH_BACKFILL, {"params": {
        "partitionNames": partitions,
        "assetSelection": [{"path": [key]} for key in ROLLUP_ASSETS],
        "fromFailure": False,
        "title": "e2e: last 7 complete UTC days",
    }})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", f"launchPartitionBackfill: {launched}"
    backfill_id = launched["backfillId"]
    print(f"[e2e] backfill {backfill_id} of {', '.join(ROLLUP_ASSETS)} for {partitions[0]}..{partitions[-1]}")

    def backfill_done() -> dict[str, Any] | None:
        result = stack.graphql(BACKFILL_STATUS, {"backfillId": backfill_id})["partitionBackfillOrError"]
        assert result["__typename"] == "PartitionBackfill", f"partitionBackfillOrError: {result}"
        if result["status"] not in BACKFILL_TERMINAL:
            return None
        if any(r["status"] not in RUN_TERMINAL for r in result["runs"]):
            return None  # a cancel/fail is only final once its runs are
        return result

    backfill = wait_for(f"backfill {backfill_id} to complete (the daemon runs backfills)", backfill_done,
                        BACKFILL_TIMEOUT_S, interval_s=2, alive=stack.check_alive)
    print(f"[e2e] backfill {backfill_id}: {backfill['status']} after {time.monotonic() - t0:.0f} s, "
          f"runs {[r['status'] for r in backfill['runs']]}")
    return PipelineResult(run_id, run_status, failures, backfill_id, backfill, partitions)
