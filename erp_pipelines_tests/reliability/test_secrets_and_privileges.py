"""Secrets and least privilege, on the real server with real password authentication.

A role with a known password logs in through scram-sha-256 (a pg_hba line for that role only). After runs that
succeed and runs that fail, the password appears in no exception, no captured output or log record, no Dagster
event (json-serialised) and no materialization metadata. Then the pipeline runs with roles holding only the
grants of docs/privileges.md, and a role lacking one gets an error naming the table it lacks it on.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from erp_pipelines import own_schema
from erp_pipelines.resources import ErpDatabase, PrismaMigrationsFolder
from erp_pipelines.retention.assets import retention_pruning
from erp_pipelines.rollups.assets import client_daily_usage, system_metric_daily
from erp_pipelines.schema.assets import erp_schema, prisma_migration_history, system_health_config
from erp_pipelines_tests.support.erp_data import (
    add_clients,
    add_modules,
    create_erp_tables,
    insert_events,
    insert_samples,
    set_health_config,
)

SCHEMA_ASSETS = [erp_schema, prisma_migration_history, system_health_config]
ROLES = ("erp_rel_owner", "erp_rel_rollup")
# The sync role (docs/privileges.md): owns the schema, and may create the throw-away shadow schema the wanted
# catalog is built in (rolled back, but CREATE SCHEMA needs CREATE on the database).
OWNER_GRANTS = [
    "ALTER SCHEMA public OWNER TO {role}",
    "GRANT CONNECT, CREATE ON DATABASE {db} TO {role}",
]
# The same privileges as `erp-pipelines grants --for rollups --for retention` (erp_pipelines/grants.py), typed
# unqualified here; test_grants_pg15.py runs the printed statements verbatim.
ROLLUP_GRANTS = [
    "GRANT CONNECT ON DATABASE {db} TO {role}",
    "GRANT USAGE ON SCHEMA public TO {role}",
    "GRANT SELECT ON system_metric_samples, client_usage_events, system_health_config TO {role}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON system_metric_daily, client_daily_usage TO {role}",
    "GRANT USAGE ON SEQUENCE system_metric_daily_id_seq TO {role}",
    "GRANT DELETE ON system_metric_samples, client_usage_events TO {role}",
    "GRANT USAGE ON SCHEMA erp_pipelines TO {role}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON erp_pipelines.rollup_ledger TO {role}",
    "GRANT SELECT, INSERT ON erp_pipelines.pruned_days TO {role}",
    "GRANT SELECT, INSERT, DELETE ON erp_pipelines.invalidations TO {role}",
]


def _url(pg_server, db: str, role: str, password: str) -> str:
    socket_dir = psycopg.conninfo.conninfo_to_dict(pg_server.get_uri())["host"]
    return f"postgresql://{role}:{password}@/{db}?host={socket_dir}"


@pytest.fixture
def password_roles(pg_server, admin_conn, erp_url):
    """Both roles with a fresh random password, password-authenticated on the socket; dropped afterwards."""
    password = "Pw-" + uuid.uuid4().hex
    hba = pg_server.pgdata / "pg_hba.conf"
    text = hba.read_text()
    lines = "".join(f"local all {r} scram-sha-256\n" for r in ROLES)
    if lines not in text:
        hba.write_text(lines + text)
        admin_conn.execute("SELECT pg_reload_conf()")
    db = psycopg.conninfo.conninfo_to_dict(erp_url)["dbname"]
    for role in ROLES:
        admin_conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role))) if admin_conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() else None
        admin_conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
        admin_conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(db), sql.Identifier(role)))
    yield password, db
    with psycopg.connect(erp_url, autocommit=True) as c:
        for role in ROLES:
            c.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
    admin_conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
    for role in ROLES:
        admin_conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def _event_texts(instance: dg.DagsterInstance) -> list[str]:
    texts = []
    for run in instance.get_runs():
        texts.append(dg.serialize_value(run))
        for record in instance.all_logs(run.run_id):
            texts.append(dg.serialize_value(record))
    return texts


@pytest.mark.slow
def test_password_never_appears_in_errors_logs_events_or_metadata(
    pg_server, admin_conn, erp_url, conn, password_roles, monkeypatch, caplog, capfd, tmp_path
):
    password, db = password_roles
    for grant in OWNER_GRANTS:
        conn.execute(sql.SQL(grant).format(db=sql.Identifier(db), role=sql.Identifier("erp_rel_owner")))
    good = _url(pg_server, db, "erp_rel_owner", password)
    with psycopg.connect(good) as probe:  # the password really is checked
        assert probe.execute("SELECT current_user").fetchone() == ("erp_rel_owner",)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(_url(pg_server, db, "erp_rel_owner", "wrong-" + password)).close()

    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    broken = tmp_path / "migrations"
    import shutil

    shutil.copytree(PrismaMigrationsFolder().folder(), broken)
    (broken / "20251231_0000_bad").mkdir()
    (broken / "20251231_0000_bad" / "migration.sql").write_text(
        f"CREATE TABLE \"t\" (\"id\" int);\nSELECT '{password}'::int;\n")  # the password inside a failing statement
    with dg.instance_for_test() as instance:
        runs = [
            (good, PrismaMigrationsFolder()),  # success
            (good, PrismaMigrationsFolder(path=str(broken))),  # failing migration
            (_url(pg_server, db, "erp_rel_owner", password + "x"), PrismaMigrationsFolder()),  # auth failure
            (_url(pg_server, db + "_missing", "erp_rel_owner", password), PrismaMigrationsFolder()),  # no database
        ]
        for url, folder in runs:
            monkeypatch.setenv("ERP_DATABASE_URL", url)
            result = dg.materialize(
                SCHEMA_ASSETS, instance=instance, raise_on_error=False,
                resources={"erp_db": ErpDatabase(url=dg.EnvVar("ERP_DATABASE_URL")), "migrations": folder},
            )
            texts.append(" ".join(str(e.event_specific_data) for e in result.all_events))
            try:  # and as an exception, the way a script calling the pipeline would see it
                dg.materialize(SCHEMA_ASSETS, instance=instance,
                               resources={"erp_db": ErpDatabase(url=url), "migrations": folder})
            except Exception as exc:  # noqa: BLE001 - every exception text is inspected below
                chain, e = [], exc
                while e is not None:
                    chain.append(repr(e) + str(e))
                    # the chain Python prints: the cause, or the context unless `raise ... from None` hid it
                    e = e.__cause__ or (None if e.__suppress_context__ else e.__context__)
                texts.append(" ".join(chain))
        texts += _event_texts(instance)
    out, err = capfd.readouterr()
    texts += [out, err, caplog.text]
    assert sum(len(t) for t in texts) > 10_000  # the runs did log plenty
    leaks = [t[max(0, t.find(password) - 200): t.find(password) + 50] for t in texts if password in t]
    assert leaks == []
    assert any("Cannot connect to the ERP database" in t for t in texts)
    assert any("20251231_0000_bad" in t for t in texts), texts[2][:3000]


def _seed(conn) -> None:
    create_erp_tables(conn)
    own_schema.install(conn, "public")  # what pipeline_state does as the schema owner
    clients, modules = add_clients(conn, 2), add_modules(conn, 2)
    set_health_config(conn, metrics_days=7, aggregate_days=365)
    base = datetime.now(UTC).replace(tzinfo=None, hour=10, minute=0, second=0, microsecond=0) - timedelta(days=20)
    insert_samples(conn, [(100 + i, 1.0, 10, 1, base + timedelta(minutes=i)) for i in range(5)])
    insert_events(conn, [(clients[i % 2], modules[i % 2], None, "view", base + timedelta(minutes=i)) for i in range(6)])


@pytest.mark.slow
def test_least_privilege_roles_can_run_everything_and_a_missing_grant_is_named(
    pg_server, erp_url, conn, password_roles
):
    password, db = password_roles
    # 1. Sync: a role owning the (empty) schema creates everything; its tables are its own.
    for grant in OWNER_GRANTS:
        conn.execute(sql.SQL(grant).format(db=sql.Identifier(db), role=sql.Identifier("erp_rel_owner")))
    owner_url = _url(pg_server, db, "erp_rel_owner", password)
    assert dg.materialize(SCHEMA_ASSETS, resources={"erp_db": ErpDatabase(url=owner_url),
                                                    "migrations": PrismaMigrationsFolder()}).success
    assert conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'users'").fetchone() == ("erp_rel_owner",)

    # 2. Rollups and retention: a role with only the documented grants, on tables it does not own.
    fresh = f"{db}_lp"
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(fresh)))
    try:
        with psycopg.connect(pg_server.get_uri(fresh), autocommit=True) as c2:
            _seed(c2)
            for grant in ROLLUP_GRANTS:
                c2.execute(sql.SQL(grant).format(db=sql.Identifier(fresh), role=sql.Identifier("erp_rel_rollup")))
            url = _url(pg_server, fresh, "erp_rel_rollup", password)
            resources = {"erp_db": ErpDatabase(url=url)}
            day = (datetime.now(UTC) - timedelta(days=20)).date().isoformat()
            assert dg.materialize([system_metric_daily, client_daily_usage], partition_key=day,
                                  resources=resources).success
            ok = dg.materialize([retention_pruning], resources=resources,
                                run_config={"ops": {"retention_pruning": {"config": {"usage_event_retention_days": 7}}}})
            assert ok.success
            assert c2.execute("SELECT count(*) FROM system_metric_samples").fetchone()[0] == 0
            assert c2.execute("SELECT count(*) FROM client_usage_events").fetchone()[0] == 0
            # Nothing beyond the grants: the role cannot write raw tables or touch the app's others.
            with psycopg.connect(url) as r, pytest.raises(psycopg.errors.InsufficientPrivilege):
                r.execute("SELECT * FROM users")

            # 3. A missing grant: the failure names the table the privilege is missing on.
            insert_samples(c2, [(100, 1.0, 10, 1, datetime.now(UTC).replace(tzinfo=None) - timedelta(days=15))])
            c2.execute("REVOKE INSERT, UPDATE ON system_metric_daily FROM erp_rel_rollup")
            day15 = (datetime.now(UTC) - timedelta(days=15)).date().isoformat()
            failed = dg.materialize([system_metric_daily], partition_key=day15, resources=resources,
                                    raise_on_error=False)
            assert not failed.success
            text = " ".join(str(e.event_specific_data) for e in failed.all_events if e.is_failure)
            assert "permission denied for table system_metric_daily" in text
            assert password not in text
    finally:
        with psycopg.connect(pg_server.get_uri(), autocommit=True) as admin:
            with psycopg.connect(pg_server.get_uri(fresh), autocommit=True) as c2:
                c2.execute("DROP OWNED BY erp_rel_rollup CASCADE")
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(fresh)))
