"""`erp-pipelines` argument handling and output rules: which command gets which arguments, every command and
option documented, no password printed by `env` (the commands are replaced by a recorder where they would
connect or start something)."""

from __future__ import annotations

import argparse
import os
import stat

import pytest

from erp_pipelines import cli
from erp_pipelines.secret_files import export_lines, holds_password

COMMANDS = ("cmd_env", "cmd_db", "cmd_plan", "cmd_dev", "cmd_run", "cmd_status", "cmd_bind")


@pytest.fixture
def called(monkeypatch) -> dict[str, argparse.Namespace]:
    """The parsed arguments each command would have been called with."""
    seen: dict[str, argparse.Namespace] = {}
    for name in COMMANDS:
        monkeypatch.setattr(cli, name, lambda args, name=name: seen.setdefault(name, args) and 0)
    return seen


def test_dev_takes_a_port_and_host_and_passes_what_follows_a_double_dash_to_dagster_dev(called):
    assert cli.main(["dev", "--port", "3001", "--host", "0.0.0.0", "--", "--log-level", "debug"]) == 0
    args = called["cmd_dev"]
    assert (args.port, args.host, args.dagster_args) == (3001, "0.0.0.0", ["--log-level", "debug"])


def test_dev_defaults_to_the_documented_port_and_the_project_workspace(called):
    cli.main(["dev"])
    args = called["cmd_dev"]
    assert (args.port, args.host, args.dagster_args) == (3000, "127.0.0.1", [])
    assert args.workspace.endswith("workspace.yaml") and os.path.isabs(args.workspace)


def test_run_and_plan_have_their_documented_defaults(called):
    cli.main(["run"])
    cli.main(["plan"])
    assert (called["cmd_run"].events, called["cmd_run"].days) == (1_000_000, 30)
    assert called["cmd_run"].demo_into_this_database is None
    # --baseline left out: resolved when the plan runs (ERP_BASELINE_MIGRATION, else the demo baseline)
    assert called["cmd_plan"].migrations is None and called["cmd_plan"].baseline is None


def test_run_into_another_database_is_named_explicitly(called):
    cli.main(["run", "--demo-into-this-database", "staging_demo"])
    assert called["cmd_run"].demo_into_this_database == "staging_demo"


@pytest.mark.parametrize("argv", [["plan", "--bogus"], ["db", "restart"], [], ["run", "--events", "many"],
                                  ["dev", "--port", "http"], ["dev", "--port", "70000"], ["plan", "--", "x"]])
def test_a_wrong_command_line_exits_2_with_the_usage(argv, called, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    assert "usage: erp-pipelines" in capsys.readouterr().err
    assert not called


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    top = cli.parser()
    action = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_and_every_option_has_help():
    top = cli.parser()
    action = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    assert {c.dest for c in action._choices_actions} == set(_subcommands())
    assert all(c.help for c in action._choices_actions)
    for name, sub in _subcommands().items():
        assert sub.description, name
        for option in sub._actions:
            assert option.help, f"{name} {option.option_strings or option.dest}"


@pytest.mark.parametrize("command", ["", "run", "plan", "status", "dev", "env", "bind", "db"])
def test_help_exits_0_and_shows_the_usage(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"] if command else ["--help"])
    assert exit_.value.code == 0
    assert "usage: erp-pipelines" in capsys.readouterr().out


def test_env_writes_passwords_to_private_files_and_prints_only_references(tmp_path):
    env = {
        "ERP_DATABASE_URL": "postgresql://erp_owner:Erp-Secret-1@db.internal:5432/erp",
        "DAGSTER_HOME": str(tmp_path),
        "DAGSTER_PG_PASSWORD": "Dagster-Secret-2",
        "DAGSTER_PG_HOST": "db.internal",
    }
    lines = export_lines(env, tmp_path)
    text = "\n".join(lines)
    assert "Erp-Secret-1" not in text and "Dagster-Secret-2" not in text
    assert "export DAGSTER_PG_HOST=db.internal" in lines
    for name in ("ERP_DATABASE_URL", "DAGSTER_PG_PASSWORD"):
        path = tmp_path / "secrets" / name
        assert f'export {name}="$(cat {path})"' in lines
        assert path.read_text("utf-8") == env[name]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700


@pytest.mark.parametrize(("name", "value", "secret"), [
    ("ERP_DATABASE_URL", "postgresql://postgres:@/erp?host=/tmp/x", False),  # the embedded server's
    ("ERP_DATABASE_URL", "postgresql://u:pw@h/erp", True),
    ("DAGSTER_PG_PASSWORD", "", False),
    ("DAGSTER_PG_PASSWORD", "x", True),
    ("DAGSTER_PG_USERNAME", "dagster", False),
])
def test_which_values_count_as_passwords(name, value, secret):
    assert holds_password(name, value) is secret


@pytest.mark.parametrize(("args", "port"), [([], "3000"), (["PORT=3001"], "3001")])
def test_make_dev_passes_its_port_to_erp_pipelines_dev(args, port):
    import subprocess

    from erp_pipelines.settings import PROJECT_ROOT

    env = {k: v for k, v in os.environ.items() if k != "PORT"}
    dry = subprocess.run(["make", "-n", "dev", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert f"erp-pipelines dev --host 127.0.0.1 --port {port}" in dry.stdout, dry.stdout + dry.stderr
