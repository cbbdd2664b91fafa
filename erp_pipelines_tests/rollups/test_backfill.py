"""A UI-style asset backfill of 30 partitions, driven by Dagster's own backfill daemon: ONE run.

The code location is the project's real `erp_pipelines.definitions` (loaded in a gRPC server process, as
`dagster dev` does), pointed at this test's database through ERP_DATABASE_URL.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

import dagster as dg
from dagster._core.execution.backfill import PartitionBackfill
from dagster._core.test_utils import create_test_daemon_workspace_context, poll_for_finished_run
from dagster._core.workspace.load_target import ModuleTarget
from dagster._daemon.backfill import execute_backfill_iteration
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

from erp_pipelines.embedded import PROJECT_ROOT
from erp_pipelines_tests.support.erp_data import add_clients, insert_events, insert_samples

DAYS = [str((datetime(2025, 4, 1) + timedelta(days=i)).date()) for i in range(30)]


def test_ui_backfill_of_30_partitions_is_one_run(erp_tables, erp_url, monkeypatch, tmp_path):
    conn = erp_tables
    client = add_clients(conn, 1)[0]
    insert_events(
        conn, [(client, 1, 1, "view", datetime.fromisoformat(d) + timedelta(hours=3)) for d in DAYS]
    )
    insert_samples(conn, [(100, None, 5, 0, datetime.fromisoformat(d) + timedelta(hours=4)) for d in DAYS])
    monkeypatch.setenv("ERP_DATABASE_URL", erp_url)
    keys = [dg.AssetKey("system_metric_daily"), dg.AssetKey("client_daily_usage")]
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        target = ModuleTarget(
            module_name="erp_pipelines.definitions",
            attribute="defs",
            working_directory=str(PROJECT_ROOT),
            location_name="erp_pipelines",
        )
        with create_test_daemon_workspace_context(target, instance) as workspace:
            asset_graph = workspace.create_request_context().asset_graph
            backfill = PartitionBackfill.from_asset_partitions(
                backfill_id="backfill30",
                asset_graph=asset_graph,
                partition_names=DAYS,
                asset_selection=keys,
                backfill_timestamp=time.time(),
                tags={},
                dynamic_partitions_store=instance,
                all_partitions=False,
                title=None,
                description=None,
                run_config=None,
            )
            instance.add_backfill(backfill)
            list(execute_backfill_iteration(workspace, logging.getLogger("backfill")))
            runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": "backfill30"}))
            assert len(runs) == 1
            run = runs[0]
            assert (
                run.tags["dagster/asset_partition_range_start"],
                run.tags["dagster/asset_partition_range_end"],
            ) == (
                DAYS[0],
                DAYS[-1],
            )
            # the run queue daemon's turn: launch the queued run (in its own process, as in production)
            list(QueuedRunCoordinatorDaemon(interval_seconds=1).run_iteration(workspace))
            finished = poll_for_finished_run(instance, run.run_id, timeout=180)
            assert finished.status == dg.DagsterRunStatus.SUCCESS
    assert conn.execute("SELECT count(*) FROM client_daily_usage").fetchone()[0] == 30
    assert conn.execute("SELECT count(*) FROM system_metric_daily").fetchone()[0] == 30
