"""The GRANTs `erp-pipelines grants` prints, run verbatim on PostgreSQL 15 for fresh non-superuser roles,
then every asset run as the role docs/privileges.md names for it.

Why: docs/production.md's grants, run as written, made the rollup fail ("permission denied for schema
erp_pipelines"); retention's suggested grant named a table without its schema; a sync as a role without
privileges said only "permission denied for database". Here the statements come from the CLI (one source:
erp_pipelines/grants.py), the ERP's data is owned by the sync role (as in production, where the app's
migration role owns it), and the rollup role holds nothing but the printed grants.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from erp_pipelines import cli
from erp_pipelines.resources import ErpDatabase, PrismaMigrationsFolder
from erp_pipelines.retention.assets import retention_pruning
from erp_pipelines.rollups.registry import ROLLUP_ASSETS
from erp_pipelines.schema.assets import erp_schema, prisma_migration_history, system_health_config
from erp_pipelines.schema.own_schema_asset import pipeline_state
from erp_pipelines_tests.support.erp_data import (
    add_clients,
    add_modules,
    insert_events,
    insert_samples,
    set_health_config,
)
from erp_pipelines_tests.support.roles import drop_database, login_roles, role_url

SCHEMA_SYNC_ASSETS = [erp_schema, prisma_migration_history, system_health_config, pipeline_state]
RETENTION_RUN = {"ops": {"retention_pruning": {"config": {"usage_event_retention_days": 7}}}}


def printed_grants(monkeypatch, capsys, url: str, *args: str) -> str:
    """What `erp-pipelines grants ARGS` prints for ERP_DATABASE_URL=url (no password in it)."""
    monkeypatch.setenv("ERP_DATABASE_URL", url)
    capsys.readouterr()
    assert cli.main(["grants", *args]) == 0
    out = capsys.readouterr().out
    assert url.split("@")[0].split(":")[-1] not in out  # the password never printed
    return out


def run_script(admin_url: str, dbname: str, text: str) -> None:
    """The printed text, verbatim, as one simple query (as psql -f would send it) by the superuser."""
    admin = urlsplit_db(admin_url, dbname)
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(text.encode())


def urlsplit_db(url: str, dbname: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + dbname


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """The user-facing message of each failed step (what the UI shows first)."""
    return " ".join(e.step_failure_data.user_failure_data.description
                    for e in result.all_events if e.is_step_failure and e.step_failure_data.user_failure_data)


@pytest.fixture
def pg15_database(pg15_server):
    """A fresh database on PostgreSQL 15 and two fresh login roles (sync owner, rollups/retention)."""
    admin_url = pg15_server.get_uri()
    with login_roles(admin_url, "erp_sync", "erp_roll") as (roles, password):
        dbname = f"grants_{roles[0].rsplit('_', 1)[1]}"
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            # PUBLIC keeps no CREATE/CONNECT of its own: only the printed grants count
            admin.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(dbname)))
        try:
            yield admin_url, dbname, roles, password
        finally:
            drop_database(admin_url, dbname, roles)


@pytest.mark.slow
def test_printed_grants_run_verbatim_let_each_role_run_its_assets_on_pg15(pg15_database, monkeypatch, capsys):
    admin_url, dbname, (sync_role, rollup_role), password = pg15_database
    sync_url = role_url(admin_url, dbname, sync_role, password)
    rollup_url = role_url(admin_url, dbname, rollup_role, password)

    # A role that may only connect (a read-only reviewer): its sync names the statement, the object and the GRANT.
    with psycopg.connect(urlsplit_db(admin_url, dbname), autocommit=True) as admin:
        admin.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(dbname), sql.Identifier(rollup_role)))
    denied = dg.materialize([erp_schema], resources={"erp_db": ErpDatabase(url=rollup_url),
                                                     "migrations": PrismaMigrationsFolder()}, raise_on_error=False)
    assert not denied.success
    text = failure_text(denied)
    assert "statement: CREATE SCHEMA" in text, text
    assert "permission denied for database" in text
    assert f'GRANT CONNECT, CREATE ON DATABASE "{dbname}" TO "{rollup_role}"' in text, text
    assert password not in text

    # The sync role: the printed statements, then schema_sync_job's assets as that role on an empty database.
    run_script(admin_url, dbname, printed_grants(monkeypatch, capsys, sync_url, "--role", sync_role, "--for", "sync"))
    synced = dg.materialize(SCHEMA_SYNC_ASSETS, resources={"erp_db": ErpDatabase(url=sync_url),
                                                           "migrations": PrismaMigrationsFolder()})
    assert synced.success
    day = (datetime.now(UTC) - timedelta(days=20)).replace(tzinfo=None, hour=10, minute=0, second=0, microsecond=0)
    with psycopg.connect(sync_url, autocommit=True) as owner:  # the ERP's data, owned by the sync role
        assert owner.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'users'").fetchone() == (sync_role,)
        clients, modules = add_clients(owner, 2), add_modules(owner, 2)
        set_health_config(owner, metrics_days=7, aggregate_days=365)
        insert_samples(owner, [(100 + i, 1.0, 10, 1, day + timedelta(minutes=i)) for i in range(5)])
        insert_events(owner, [(clients[i % 2], modules[i % 2], None, "view", day + timedelta(minutes=i)) for i in range(6)])

    # The rollup role: only the printed statements; rollups then retention as that role.
    rollup_grants = printed_grants(monkeypatch, capsys, rollup_url, "--role", rollup_role,
                                   "--for", "rollups", "--for", "retention")
    run_script(admin_url, dbname, rollup_grants)
    as_rollup = {"erp_db": ErpDatabase(url=rollup_url)}
    assert dg.materialize(list(ROLLUP_ASSETS), partition_key=day.date().isoformat(), resources=as_rollup).success
    assert dg.materialize([retention_pruning], resources=as_rollup, run_config=RETENTION_RUN).success
    with psycopg.connect(sync_url, autocommit=True) as owner:
        assert owner.execute("SELECT count(*) FROM system_metric_daily").fetchone() == (1,)
        assert owner.execute("SELECT count(*) FROM system_metric_samples").fetchone() == (0,)
        assert owner.execute("SELECT count(*) FROM client_usage_events").fetchone() == (0,)
    with psycopg.connect(rollup_url) as r, pytest.raises(psycopg.errors.InsufficientPrivilege):
        r.execute("SELECT * FROM users")  # nothing beyond the grants

    # One grant taken back: retention's error names the schema-qualified table and the printed GRANT.
    with psycopg.connect(sync_url, autocommit=True) as owner:
        insert_events(owner, [(clients[0], modules[0], None, "view", day + timedelta(days=1))])
        owner.execute(sql.SQL("REVOKE DELETE ON client_usage_events FROM {}").format(sql.Identifier(rollup_role)))
    next_day = (day + timedelta(days=1)).date().isoformat()
    assert dg.materialize(list(ROLLUP_ASSETS), partition_key=next_day, resources=as_rollup).success
    failed = dg.materialize([retention_pruning], resources=as_rollup, run_config=RETENTION_RUN, raise_on_error=False)
    assert not failed.success
    text = failure_text(failed)
    expected = next(line.split(";")[0] for line in rollup_grants.splitlines() if '"client_usage_events"' in line)
    assert 'table "public"."client_usage_events"' in text, text
    assert expected in text, text
    assert 'statement: DELETE FROM "client_usage_events"' in text, text
    assert password not in text

