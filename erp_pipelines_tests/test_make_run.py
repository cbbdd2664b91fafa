"""`make run` as a newcomer runs it: a real process, the embedded PostgreSQL, the persistent Dagster instance.

Small data (the default is a million events); the first run builds the demo ERP and runs everything, the
second is a no-op that re-aggregates nothing.
"""

import subprocess

import pytest

from erp_pipelines_tests.support.commands import erp_pipelines


def _run(state_dir, *args: str) -> subprocess.CompletedProcess:
    return erp_pipelines(*args, env={"ERP_PIPELINES_STATE_DIR": str(state_dir)})


@pytest.mark.slow
def test_make_run_builds_the_demo_runs_everything_and_a_second_run_is_a_no_op(tmp_path):
    state = tmp_path / "state"
    try:
        first = _run(state, "run", "--events", "20000", "--days", "10")
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        out = first.stdout
        assert "Loaded the seed's drifted production state" in out
        assert "users preserved                        20 of 20" in out
        assert "10 days x 2 rollups in this run" in out
        assert "system_metric_daily.health_thresholds: FAILED (ERROR)" in out  # the demo's incident day
        assert "make dev" in out

        second = _run(state, "run", "--events", "20000", "--days", "10")
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        assert "nothing to re-aggregate" in second.stdout
        assert "schema statements run                  0" in second.stdout
        assert "0 days x 2 rollups in this run (10 days already done)" in second.stdout
    finally:
        _run(state, "db", "stop")
