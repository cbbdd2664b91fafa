"""The `erp-pipelines` command as a user runs it: a real process against a real PostgreSQL."""

from erp_pipelines.demo.state import load_drifted_state
from erp_pipelines.resources import DEMO_MIGRATIONS_DIR
from erp_pipelines_tests.support.commands import dagster, exported
from erp_pipelines_tests.support.commands import erp_pipelines as cli
from erp_pipelines_tests.support.databases import new_database


def test_plan_prints_the_sql_and_changes_nothing(erp_url, conn):
    load_drifted_state(conn)
    before = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
    out = cli("plan", env={"ERP_DATABASE_URL": erp_url, "DAGSTER_PG_URL": "unused"})
    assert out.returncode == 0, out.stderr
    assert 'ALTER TABLE "system_health_config" ADD COLUMN "metricsRetentionDays"' in out.stdout
    assert "-- tables_added: 29" in out.stdout
    assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == before


def test_plan_with_a_missing_migrations_folder_exits_2_with_the_setting_named(erp_url, tmp_path):
    out = cli("plan", "--migrations", str(tmp_path / "nope"), env={"ERP_DATABASE_URL": erp_url, "DAGSTER_PG_URL": "x"})
    assert out.returncode == 2
    assert "PRISMA_MIGRATIONS_DIR" in out.stderr and "Traceback" not in out.stderr


def test_plan_against_an_unreachable_database_exits_2_without_the_password():
    url = "postgresql://ops:Hunter2-Very-Secret@127.0.0.1:1/erp?connect_timeout=2"
    out = cli("plan", env={"ERP_DATABASE_URL": url, "DAGSTER_PG_URL": "x"})
    assert out.returncode == 2
    assert "Cannot connect to the ERP database" in out.stderr
    assert "Hunter2-Very-Secret" not in out.stderr + out.stdout and "Traceback" not in out.stderr


def test_dagster_cli_loads_the_module_without_naming_its_definitions(pg_server, erp_url, conn, tmp_path):
    """`dagster definitions validate` and `dagster asset materialize` with `-m erp_pipelines.definitions` only
    (no `-a defs`), on the instance `erp-pipelines env` describes (Dagster's storage from its parts)."""
    load_drifted_state(conn)
    tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
    before = conn.execute(tables).fetchone()[0]
    env = {
        "ERP_DATABASE_URL": erp_url,
        "DAGSTER_PG_URL": new_database(pg_server),
        "ERP_PIPELINES_STATE_DIR": str(tmp_path / "state"),
    }
    exports = exported(cli("env", env=env).stdout)

    validate = dagster("definitions", "validate", "-m", "erp_pipelines.definitions", env=exports)
    assert validate.returncode == 0, validate.stderr[-3000:]
    assert "Validation successful" in validate.stdout + validate.stderr

    dry_run = '{"ops": {"erp_schema": {"config": {"dry_run": true}}}}'
    materialize = dagster(
        "asset", "materialize", "-m", "erp_pipelines.definitions", "--select", "erp_schema",
        "--config-json", dry_run, env=exports,
    )
    assert materialize.returncode == 0, materialize.stderr[-3000:]
    assert "RUN_SUCCESS" in materialize.stdout + materialize.stderr
    assert conn.execute(tables).fetchone()[0] == before  # a dry run changes nothing


STATUS_SECTIONS = ("Schema", "Migration history", "Rollup ledger", "Pruned days", "Dagster instance")


def test_status_names_each_section_on_one_screen_and_changes_nothing(erp_url, conn):
    load_drifted_state(conn)
    tables = "SELECT count(*) FROM pg_class WHERE relnamespace NOT IN (SELECT oid FROM pg_namespace WHERE nspname LIKE 'pg_%' OR nspname = 'information_schema')"
    before = conn.execute(tables).fetchone()[0]
    out = cli("status", env={"ERP_DATABASE_URL": erp_url, "DAGSTER_PG_URL": "unused",
                             "PRISMA_MIGRATIONS_DIR": str(DEMO_MIGRATIONS_DIR)})  # set, as the README does
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line for line in lines if line in STATUS_SECTIONS] == list(STATUS_SECTIONS)
    assert len(lines) <= 40 and max(map(len, lines)) <= 200  # one screen
    assert "statements the sync would run: " in out.stdout and "drift (reported, never changed): " in out.stdout
    assert "failed, unresolved (blocks prisma migrate deploy): " in out.stdout
    assert "schema erp_pipelines not created yet" in out.stdout  # ledger and pruned days: read, not created
    assert conn.execute(tables).fetchone()[0] == before


def test_no_command_prints_a_password(pg_server, erp_url, tmp_path):
    """Every command a user runs, with passwords in ERP_DATABASE_URL and Dagster's storage URL (the embedded
    server trusts local connections, so the passwords are carried and ignored): none shows up in any output."""
    erp_password, dagster_password = "Erp-Pw-Never-Shown-1", "Dagster-Pw-Never-Shown-2"
    env = {
        "ERP_DATABASE_URL": erp_url.replace("postgres:@", f"postgres:{erp_password}@", 1),
        "DAGSTER_PG_URL": new_database(pg_server).replace("postgres:@", f"postgres:{dagster_password}@", 1),
        "ERP_PIPELINES_STATE_DIR": str(tmp_path / "state"),
    }
    outputs = {args: cli(*args, env=env) for args in [("env",), ("plan",), ("status",), ("run",), ("--help",)]}
    assert outputs[("env",)].returncode == 0 and outputs[("plan",)].returncode == 0
    assert outputs[("run",)].returncode == 2  # refused: not the demo's database
    for args, out in outputs.items():
        text = out.stdout + out.stderr
        assert erp_password not in text and dagster_password not in text, args
        assert "RuntimeDirWarning" not in text, args
    exports = exported(outputs[("env",)].stdout)  # eval still sets the real values
    assert exports["ERP_DATABASE_URL"] == env["ERP_DATABASE_URL"]
    assert exports["DAGSTER_PG_PASSWORD"] == dagster_password


def test_bind_records_the_instances_database_and_status_shows_when_another_one_is_asked_for(pg_server, tmp_path):
    """`erp-pipelines bind` on a real Dagster instance, then `status` for another database: the instance
    section says the instance serves ANOTHER database and names it."""
    first, second = new_database(pg_server), new_database(pg_server)
    base = {"DAGSTER_PG_URL": new_database(pg_server), "ERP_PIPELINES_STATE_DIR": str(tmp_path / "state")}
    bound = cli("bind", env={**base, "ERP_DATABASE_URL": first})
    assert bound.returncode == 0, bound.stderr[-3000:]
    first_name = first.split("?")[0].rsplit("/", 1)[1]
    assert f"now serves database '{first_name}'" in bound.stdout
    exports = exported(cli("env", env={**base, "ERP_DATABASE_URL": second}).stdout)
    status = cli("status", env=exports)
    assert status.returncode == 0, status.stderr[-3000:]
    assert f"serves ANOTHER database, database '{first_name}'" in status.stdout
