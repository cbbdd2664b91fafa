"""`make run` as a newcomer runs it: a real process, the embedded PostgreSQL, the persistent Dagster instance.

Small data (the default is a million events); the first run builds the demo ERP and runs everything, the
second is a no-op that re-aggregates nothing.
"""

import re
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from erp_pipelines_tests.support.commands import erp_pipelines


def _run(state_dir, *args: str) -> subprocess.CompletedProcess:
    return erp_pipelines(*args, env={"ERP_PIPELINES_STATE_DIR": str(state_dir)})


@pytest.mark.slow
def test_make_run_builds_the_demo_runs_everything_and_a_second_run_is_a_no_op(server_state):
    state = server_state
    try:
        first = _run(state, "run", "--events", "20000", "--days", "10")
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        out = first.stdout
        assert "Loaded the seed's drifted production state" in out
        assert "users preserved                        20 of 20" in out
        assert "10 days x 3 rollups in this run" in out
        # the demo's incident day, and only it (the check is judged per day: the runner names the partition)
        breaches = re.findall(r"system_metric_daily\.health_thresholds \[([-\d]+)\]: FAILED \((\w+)\)", out)
        assert [level for _, level in breaches] == ["ERROR"], out[-3000:]
        assert "make dev" in out
        # the operator's view (issue 17): designed findings apart from real failures, drift and added tables
        # named, no doubled step prefix, partitions from the first day of data
        assert "0 real failure(s)" in out and "as the demo was built to show" in out, out[-3000:]
        assert re.search(r"drift reported \(not changed\)\s+\d+: \S", out), out[-3000:]
        assert re.search(r"tables before / after\s+\d+ / \d+; added: \w", out), out[-3000:]
        assert not re.search(r"\[(\w+)\] \1:", out), "a progress line repeats its step's name"
        first_day = (datetime.now(UTC).date() - timedelta(days=10)).isoformat()
        assert f"Daily partitions start at {first_day}" in out, out[:2000]
        # the declared third rollup: its raw rows generated after the sync created the table, rolled up
        assert "demo rate-limit violations" in out
        assert re.search(r"rate_limit_violations_daily\s+2,000 raw rows read", out), out[-3000:]

        second = _run(state, "run", "--events", "20000", "--days", "10")
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        assert "nothing to re-aggregate" in second.stdout
        assert "schema statements run                  0" in second.stdout
        assert "0 days x 3 rollups in this run (10 days already done)" in second.stdout
        # a no-op run never contradicts the ERROR that stands (read from the instance's latest evaluations)
        standing = re.findall(r"system_metric_daily\.health_thresholds \[([-\d]+)\]: FAILED \(ERROR\) \(standing",
                              second.stdout)
        assert standing == [day for day, _ in breaches], second.stdout[-3000:]
    finally:
        _run(state, "db", "stop")
