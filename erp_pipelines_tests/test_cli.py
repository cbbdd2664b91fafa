"""The `erp-pipelines` command as a user runs it: a real process against a real PostgreSQL."""

import os
import subprocess
import sys

from erp_pipelines.demo.state import load_drifted_state


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "erp_pipelines.cli", *args],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=300,
    )


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
