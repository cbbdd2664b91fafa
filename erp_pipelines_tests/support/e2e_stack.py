"""The end-to-end stack's parts: GraphQL queries, `dagster dev` started and stopped, waiting for the daemon.

The fixtures that assemble them (`dagster_stack`, `pipeline`) are in erp_pipelines_tests/e2e/conftest.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
from dagster_graphql import DagsterGraphQLClient

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_OUTPUT = REPO_ROOT / "test-output"

SCHEMA_SYNC_JOB = "schema_sync_job"
ROLLUP_ASSETS = ("system_metric_daily", "client_daily_usage")
BACKFILL_DAYS = 7
DATA_DAYS = 8  # one day more than the backfill: that day must stay without rollup rows
PARTITION_HISTORY_DAYS = 30  # ERP_ROLLUP_START_DATE for the stack: 30 partitions, 7 of them backfilled

# Safety limits only (the machine is shared): nothing asserts how long anything takes.
SERVER_TIMEOUT_S = 120
RUN_TIMEOUT_S = 180
BACKFILL_TIMEOUT_S = 360
SHUTDOWN_TIMEOUT_S = 30

RUN_TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
BACKFILL_TERMINAL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
BACKFILL_SUCCEEDED = {"COMPLETED", "COMPLETED_SUCCESS"}

WORKSPACE_QUERY = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { name repositories { name } }
          ... on PythonError { message stack }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""

LAUNCH_BACKFILL = """
mutation LaunchBackfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}
"""

BACKFILL_STATUS = """
query BackfillStatus($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill {
      id
      status
      numPartitions
      error { message }
      runs { runId status }
      assetBackfillData {
        assetBackfillStatuses {
          __typename
          ... on AssetPartitionsStatusCounts {
            assetKey { path }
            numPartitionsTargeted
            numPartitionsInProgress
            numPartitionsMaterialized
            numPartitionsFailed
          }
        }
      }
    }
    ... on Error { message }
  }
}
"""

SENSOR_TICKS = """
query SensorTicks($selector: RepositorySelector!) {
  sensorsOrError(repositorySelector: $selector) {
    __typename
    ... on Sensors { results { name sensorState { status ticks(limit: 1) { status } } } }
    ... on Error { message }
  }
}
"""

RUNS_IN_FLIGHT = """
query RunsInFlight {
  runsOrError(filter: {statuses: [QUEUED, NOT_STARTED, STARTING, STARTED, CANCELING]}) {
    __typename
    ... on Runs { results { runId jobName } }
    ... on Error { message }
  }
}
"""

RUN_FAILURES = """
query RunFailures($runId: ID!) {
  logsForRun(runId: $runId, limit: 1000) {
    __typename
    ... on EventConnection {
      events { __typename ... on ErrorEvent { error { message } } ... on MessageEvent { message } }
    }
  }
}
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def wait_for(what: str, probe: Callable[[], Any], timeout_s: float, interval_s: float = 1.0,
              alive: Callable[[], None] | None = None) -> Any:
    """Call `probe` until it returns something truthy; fail with `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while True:
        if alive:
            alive()
        try:
            result = probe()
            if result:
                return result
        except AssertionError:
            raise  # a wrong answer, not a slow one
        except Exception as exc:  # noqa: BLE001 - not up yet; reported if it never comes up
            last_error = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout_s:.0f} s waiting for {what}"
                                 + (f" (last error: {last_error!r})" if last_error else ""))
        time.sleep(interval_s)


@dataclass
class DagsterStack:
    port: int
    erp_url: str
    client: DagsterGraphQLClient
    log_path: Path
    location_name: str
    repository_name: str
    today: date
    process: subprocess.Popen = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def backfill_partitions(self) -> list[str]:
        """The last seven complete UTC days, oldest first."""
        return [str(self.today - timedelta(days=d)) for d in range(BACKFILL_DAYS, 0, -1)]

    def group_path(self, group: str) -> str:
        """UI path of an asset group's lineage page: /locations/<repository>@<location>/asset-groups/<group>."""
        return f"/locations/{quote(self.repository_name, safe='')}@{quote(self.location_name, safe=':')}" \
               f"/asset-groups/{quote(group, safe='')}"

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"`dagster dev` exited with code {self.process.returncode}. "
                                 f"Log {self.log_path}:\n{log_tail(self.log_path)}")

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.client._execute(query, variables)  # the client has no backfill method: raw GraphQL


def dagster_executable() -> str:
    candidate = Path(sys.executable).parent / "dagster"
    return str(candidate) if candidate.exists() else (shutil.which("dagster") or "dagster")


def stack_env(urls_env: dict[str, str], start_date: date) -> dict[str, str]:
    # Only this stack's instance and databases: no DAGSTER_*, ERP_* or PRISMA_* setting of the caller leaks in.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "ERP_", "PRISMA_"))}
    env.update(urls_env)
    env["ERP_ROLLUP_START_DATE"] = str(start_date)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def stop_process_tree(proc: subprocess.Popen) -> None:
    """Stop `dagster dev` and everything it started: SIGTERM to it, then SIGKILL to its group and children."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # dagster dev stops its webserver, daemon and code servers itself
        try:
            proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # started with start_new_session: its group id is its pid
    except (ProcessLookupError, PermissionError):
        pass
    for child in children:  # anything that left the group (run workers, code servers)
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def wait_for_code_location(stack: DagsterStack) -> tuple[str, str]:
    def loaded() -> tuple[str, str] | None:
        data = stack.graphql(WORKSPACE_QUERY)["workspaceOrError"]
        entries = data.get("locationEntries") or []
        for entry in entries:
            location = entry["locationOrLoadError"] or {}
            if location.get("__typename") == "PythonError":
                raise AssertionError(f"Code location {entry['name']} failed to load: {location['message']}\n"
                                     f"{''.join(location.get('stack') or [])}")
        if entries and all(e["loadStatus"] == "LOADED" and e["locationOrLoadError"] for e in entries):
            location = entries[0]["locationOrLoadError"]
            return location["name"], location["repositories"][0]["name"]
        return None

    deadline = time.monotonic() + SERVER_TIMEOUT_S
    while True:
        stack.check_alive()
        try:
            found = loaded()
        except AssertionError:
            raise  # the code location failed to load
        except Exception:  # noqa: BLE001 - webserver still starting
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"The code location did not load within {SERVER_TIMEOUT_S} s. "
                                 f"Log {stack.log_path}:\n{log_tail(stack.log_path)}")
        time.sleep(1)


def wait_for_daemon_startup(stack: DagsterStack) -> None:
    """Wait until every running sensor has ticked once and the runs they requested have finished.

    On its first look, the project's migrations sensor requests a DRY RUN of schema_sync_job. Were that
    run to finish after the test's own schema_sync_job, it would be the latest execution of the schema
    group's checks and the UI would show them "Skipped". So the test starts from a quiet instance.
    """
    selector = {"repositoryName": stack.repository_name, "repositoryLocationName": stack.location_name}

    def sensors_ticked() -> bool:
        result = stack.graphql(SENSOR_TICKS, {"selector": selector})["sensorsOrError"]
        assert result["__typename"] == "Sensors", f"sensorsOrError: {result}"
        running = [s for s in result["results"] if s["sensorState"]["status"] == "RUNNING"]
        return all(s["sensorState"]["ticks"] and s["sensorState"]["ticks"][0]["status"] != "STARTED"
                   for s in running)

    def no_run_in_flight() -> bool:
        result = stack.graphql(RUNS_IN_FLIGHT)["runsOrError"]
        assert result["__typename"] == "Runs", f"runsOrError: {result}"
        return not result["results"]

    wait_for("the first tick of every running sensor", sensors_ticked, SERVER_TIMEOUT_S, alive=stack.check_alive)
    wait_for("the runs the sensors requested at startup to finish", no_run_in_flight, RUN_TIMEOUT_S,
             alive=stack.check_alive)


@dataclass(frozen=True)
class PipelineResult:
    schema_run_id: str
    schema_run_status: str
    schema_run_failures: str
    backfill_id: str
    backfill: dict[str, Any]
    partitions: list[str]


def run_failures(stack: DagsterStack, run_id: str) -> str:
    """The error messages of a run's failure events, for assertion messages."""
    try:
        logs = stack.graphql(RUN_FAILURES, {"runId": run_id})["logsForRun"]
    except Exception as exc:  # noqa: BLE001 - diagnostics only
        return f"(could not read the run's events: {exc})"
    messages = [
        (e.get("error") or {}).get("message") or e.get("message", "")
        for e in logs.get("events", [])
        if e["__typename"] in ("ExecutionStepFailureEvent", "RunFailureEvent", "EngineEvent") and e.get("error")
    ]
    return "\n".join(m for m in messages if m) or "(no failure events)"
