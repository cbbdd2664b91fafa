"""A new user's journey to their own database, executed as the documents write it.

Why: README.md's own-database section and docs/production.md, followed verbatim, broke or endangered data
(grants that did not work, a plan that crashed, a `make run` that wrote demo data into the user's
database). Here the commands are TAKEN FROM THE DOCUMENTS (blocks marked `<!-- journey -->`, see
support/journey.py), never re-typed, and run on PostgreSQL 15 against a database whose ERP tables and data
belong to a non-superuser role, with a migrations folder of its own (a copy of the demo's under another
path): plan, sync, migration history, rollups, retention.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from erp_pipelines.demo.state import load_drifted_state
from erp_pipelines.embedded import PROJECT_ROOT
from erp_pipelines.resources import DEMO_MIGRATIONS_DIR
from erp_pipelines_tests.support.erp_data import add_clients, add_modules, insert_events, insert_samples
from erp_pipelines_tests.support.journey import blocks, run_block
from erp_pipelines_tests.support.prisma_cli import assert_prisma_up_to_date
from erp_pipelines_tests.support.roles import role_url

README = PROJECT_ROOT / "README.md"
PRODUCTION = PROJECT_ROOT / "docs" / "production.md"
ROLES = ("erp_owner", "erp_rollup")  # the names the documents use


@pytest.fixture
def own_database(pg15_server, tmp_path):
    """A PostgreSQL 15 database like a user's: the seed's drifted ERP, owned by the non-superuser erp_owner;
    the roles of the documents; a migrations folder of its own; an empty Dagster home."""
    admin_url = pg15_server.get_uri()
    dbname = "journey_" + tmp_path.name.rsplit("_", 1)[-1].lower().replace("-", "_")[-12:]
    password = "Pw" + dbname
    with psycopg.connect(admin_url, autocommit=True) as admin:
        for role in ROLES:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    db_admin = role_url(admin_url, dbname, "postgres", pg15_server.password)
    with psycopg.connect(db_admin, autocommit=True) as c:  # the app's migration role owns the ERP's schema
        c.execute("ALTER SCHEMA public OWNER TO erp_owner")
    owner_url = role_url(admin_url, dbname, "erp_owner", password)
    with psycopg.connect(owner_url, autocommit=True) as owner:
        load_drifted_state(owner)
    migrations = tmp_path / "your-app" / "prisma" / "migrations"
    shutil.copytree(DEMO_MIGRATIONS_DIR, migrations)
    (tmp_path / "dagster_home").mkdir()
    env = {
        "ERP_ADMIN_URL": db_admin,
        "ERP_SCHEMA_OWNER_URL": owner_url,
        "ERP_DATABASE_URL": role_url(admin_url, dbname, "erp_rollup", password),
        "PRISMA_MIGRATIONS_DIR": str(migrations),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    try:
        yield env, migrations
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
            for role in ROLES:
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


PIPELINE_STATE_OWNERS = (
    "SELECT (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'erp_pipelines'), "
    "(SELECT string_agg(DISTINCT proowner::regrole::text, ',') FROM pg_proc "
    "WHERE pronamespace = 'erp_pipelines'::regnamespace)"
)


def pipeline_state_role() -> str:
    """The role docs/privileges.md names for pipeline_state (generated from erp_pipelines/grants.py)."""
    from erp_pipelines import grants

    purpose = dict(grants.ASSET_ROLES)["pipeline_state"]
    return {"sync": grants.DOC_SYNC_ROLE}.get(purpose, grants.DOC_ROLLUP_ROLE)


def _ok(result) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def _app_writes(owner_url: str) -> None:
    """The app's raw rows (written by the owner role): samples and events on each of the last 10 days."""
    today = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    with psycopg.connect(owner_url, autocommit=True) as owner:
        clients, modules = add_clients(owner, 2), add_modules(owner, 2)
        for back in range(1, 11):
            day = today - timedelta(days=back) + timedelta(hours=10)
            insert_samples(owner, [(100 + i, 1.0, 10, 1, day + timedelta(minutes=i)) for i in range(3)])
            insert_events(owner, [(clients[i % 2], modules[i % 2], None, "view", day + timedelta(minutes=i))
                                  for i in range(4)])


@pytest.mark.slow
def test_the_documented_path_to_your_own_database_works_as_written_on_pg15(own_database):
    env, migrations = own_database
    readme_blocks, production_blocks = blocks(README), blocks(PRODUCTION)
    assert len(readme_blocks) == 1 and len(production_blocks) == 2, "the journey's blocks moved: update this test"

    # README: the plan, as the owner, for a migrations folder that is not the demo's path
    plan = _ok(run_block(readme_blocks[0], {**env, "ERP_DATABASE_URL": env["ERP_SCHEMA_OWNER_URL"]}))
    assert f"-- migrations: {migrations}" in plan and "CREATE TABLE" in plan
    assert "Pw" not in plan  # no password printed

    # production.md: the sync role's grants, the plan, schema_sync_job as that role
    _ok(run_block(production_blocks[0], env))
    owner_url = env["ERP_SCHEMA_OWNER_URL"]
    with psycopg.connect(owner_url, autocommit=True) as owner:
        assert owner.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'system_metric_daily'").fetchone() == (
            "erp_owner",)
        assert owner.execute("SELECT count(*) FROM users").fetchone()[0] == 20  # the ERP's rows kept
        assert owner.execute("SELECT to_regnamespace('erp_pipelines') IS NOT NULL").fetchone() == (True,)
        # pipeline_state ran as the role the docs name for it (grants.py, docs/privileges.md): it owns our
        # schema and the capture functions, and the triggers are on the raw tables
        assert owner.execute(PIPELINE_STATE_OWNERS).fetchone() == (pipeline_state_role(), pipeline_state_role())
        assert owner.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'erp_pipelines_capture_%'"
                             ).fetchone()[0] >= 6
    assert_prisma_up_to_date(owner_url, migrations)  # the real Prisma CLI: nothing left to deploy

    # the app writes; then the rollup role's grants, ten days of rollups as one run, retention, as erp_rollup
    _app_writes(owner_url)
    _ok(run_block(production_blocks[1], env))
    with psycopg.connect(owner_url, autocommit=True) as owner:
        assert owner.execute("SELECT count(*) FROM system_metric_daily").fetchone() == (10,)
        assert owner.execute("SELECT count(DISTINCT date) FROM client_daily_usage").fetchone() == (10,)
        # metricsRetentionDays 7: the raw samples of the days older than that went, each held by its aggregate
        pruned = owner.execute("SELECT count(*) FROM erp_pipelines.pruned_days").fetchone()[0]
        assert pruned >= 2
        oldest = owner.execute("SELECT min(collected_at) FROM system_metric_samples").fetchone()[0]
        assert oldest >= datetime.now(UTC).replace(tzinfo=None) - timedelta(days=9)
    with psycopg.connect(env["ERP_DATABASE_URL"]) as rollup, pytest.raises(psycopg.errors.InsufficientPrivilege):
        rollup.execute("SELECT * FROM users")  # the rollup role holds nothing beyond its grants

    # production.md: everything at a glance, then `make run` refuses this database and writes nothing
    status = _ok(run_block(blocks(PRODUCTION, "journey: status")[0], env))
    for section in ("Schema", "Migration history", "Rollup ledger", "Pruned days"):
        assert section in status
    assert "Pw" not in status and "unavailable" not in status, status
    # the rollup role's own status (found walking this path): what it may not read, and what to run instead
    limited = _ok(run_block(".venv/bin/erp-pipelines status", env))
    assert "permission denied" in limited and "with ERP_DATABASE_URL set to the schema owner" in limited, limited
    assert "Rollup ledger" in limited and "Pw" not in limited
    refused = run_block(blocks(PRODUCTION, "journey: refused")[0], env, timeout_s=120)
    assert refused.returncode != 0
    assert "make run" in refused.stderr + refused.stdout
    with psycopg.connect(owner_url) as owner:  # nothing of the demo was written
        assert owner.execute("SELECT count(*) FROM users").fetchone()[0] == 20

