"""`erp-pipelines` argument handling (no command is run here)."""

from __future__ import annotations

import pytest

from erp_pipelines import cli
from erp_pipelines.schema.assets import DEFAULT_BASELINE


def test_everything_after_dev_goes_to_dagster_dev_as_it_is():
    args = cli.parse_args(["dev", "-h", "127.0.0.1", "-p", "3000", "-w", "workspace.yaml"])
    assert args.func is cli.cmd_dev
    assert args.dagster_args == ["-h", "127.0.0.1", "-p", "3000", "-w", "workspace.yaml"]


def test_run_and_plan_have_their_documented_defaults():
    run = cli.parse_args(["run"])
    assert (run.func, run.events, run.days) == (cli.cmd_run, 1_000_000, 30)
    plan = cli.parse_args(["plan"])
    assert (plan.func, plan.baseline, plan.migrations) == (cli.cmd_plan, DEFAULT_BASELINE, None)


@pytest.mark.parametrize("argv", [["plan", "--bogus"], ["db", "restart"], [], ["run", "--events", "many"]])
def test_a_wrong_command_line_exits_2_with_the_usage(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.parse_args(argv)
    assert exit_.value.code == 2
    assert "usage: erp-pipelines" in capsys.readouterr().err
