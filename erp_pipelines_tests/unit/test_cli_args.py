"""`erp-pipelines` argument handling: which command gets which arguments (the commands are replaced by a
recorder here, so nothing connects or starts)."""

from __future__ import annotations

import argparse

import pytest

from erp_pipelines import cli


@pytest.fixture
def called(monkeypatch) -> dict[str, argparse.Namespace]:
    """The parsed arguments each command would have been called with."""
    seen: dict[str, argparse.Namespace] = {}
    for name in ("cmd_env", "cmd_db", "cmd_plan", "cmd_dev", "cmd_run"):
        monkeypatch.setattr(cli, name, lambda args, name=name: seen.setdefault(name, args) and 0)
    return seen


def test_everything_after_dev_goes_to_dagster_dev_as_it_is(called):
    assert cli.main(["dev", "-h", "127.0.0.1", "-p", "3000", "-w", "workspace.yaml"]) == 0
    assert called["cmd_dev"].dagster_args == ["-h", "127.0.0.1", "-p", "3000", "-w", "workspace.yaml"]


def test_run_and_plan_have_their_documented_defaults(called):
    cli.main(["run"])
    cli.main(["plan"])
    assert (called["cmd_run"].events, called["cmd_run"].days) == (1_000_000, 30)
    # --baseline left out: resolved when the plan runs (ERP_BASELINE_MIGRATION, else the demo baseline)
    assert called["cmd_plan"].migrations is None and called["cmd_plan"].baseline is None


@pytest.mark.parametrize("argv", [["plan", "--bogus"], ["db", "restart"], [], ["run", "--events", "many"]])
def test_a_wrong_command_line_exits_2_with_the_usage(argv, called, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    assert "usage: erp-pipelines" in capsys.readouterr().err
    assert not called
