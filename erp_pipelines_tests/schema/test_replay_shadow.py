"""A shadow database (`ERP_SHADOW_DATABASE_URL`, Prisma's shadowDatabaseUrl idea): a role with no CREATE on
the ERP database plans with it, gets a message naming the privilege and the setting without it, and a shadow
server of another major is named in a warning. Target: PostgreSQL 15; shadow: PostgreSQL 18."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from erp_pipelines import settings
from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.prisma.sync import plan_sync
from erp_pipelines_tests.support.commands import erp_pipelines as cli
from erp_pipelines_tests.support.databases import new_database
from erp_pipelines_tests.support.replay_folders import history

MIGRATIONS = {
    "20250101_0000_init": 'CREATE TABLE "User" ("id" SERIAL PRIMARY KEY, "email" TEXT);',
    "20250201_0000_name": 'ALTER TABLE "User" ADD COLUMN "name" TEXT;',
}
PASSWORD = "pw-" + uuid.uuid4().hex[:12]


def _as_user(url: str, role: str) -> str:
    """`url` (postgresql://...) logging in as `role` with PASSWORD."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}:{PASSWORD}@{host}"))


def _reader_url(url: str) -> str:
    """A role that may read the ERP database (CONNECT, SELECT) and create nothing in it."""
    role = "reader_" + uuid.uuid4().hex[:8]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute('CREATE TABLE "User" ("id" SERIAL PRIMARY KEY, "email" TEXT)')
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(PASSWORD)))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(sql.Identifier(role)))
    return _as_user(url, role)


def _shadow_url(pg_server) -> str:
    url = new_database(pg_server)
    role = "shadow_" + uuid.uuid4().hex[:8]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(PASSWORD)))
        conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
            sql.Identifier(conninfo_to_dict(url)["dbname"]), sql.Identifier(role)))
    return _as_user(url, role)


def test_read_only_role_plans_with_a_shadow_database_and_is_told_what_is_missing_without_it(
        pg15_server, pg_server, tmp_path, monkeypatch):
    migrations = history(tmp_path / "m", MIGRATIONS)
    reader = _reader_url(new_database(pg15_server))
    monkeypatch.delenv(settings.SHADOW_DATABASE_URL, raising=False)
    with psycopg.connect(reader) as conn, pytest.raises(ErpPipelinesError) as refused:
        plan_sync(conn, migrations, "public")
    message = str(refused.value)
    assert "CREATE privilege" in message and settings.SHADOW_DATABASE_URL in message and PASSWORD not in message

    monkeypatch.setenv(settings.SHADOW_DATABASE_URL, _shadow_url(pg_server))
    warnings: list[str] = []
    with psycopg.connect(reader) as conn:
        plan, _live, wanted, _print = plan_sync(conn, migrations, "public", warn=warnings.append)
    assert [s.sql for s in plan.steps] and all('"name"' in s.sql for s in plan.steps)
    assert set(wanted.tables["User"].columns) == {"id", "email", "name"}
    assert len(warnings) == 1 and "PostgreSQL 18" in warnings[0] and "PostgreSQL 15" in warnings[0]
    assert PASSWORD not in warnings[0]
    with psycopg.connect(reader) as conn:  # nothing was created on the ERP database
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'erp_pipelines_shadow%'"
                            ).fetchone()[0] == 0


def test_erp_pipelines_plan_for_a_read_only_role_works_with_a_shadow_database(pg15_server, pg_server, tmp_path):
    folder = tmp_path / "m"
    history(folder, MIGRATIONS)
    reader = _reader_url(new_database(pg15_server))
    env = {"ERP_DATABASE_URL": reader, "DAGSTER_PG_URL": "unused", settings.BASELINE_MIGRATION: "20250201_0000_name",
           settings.REPLAY_FROM: "20250101_0000_init"}
    refused = cli("plan", "--migrations", str(folder), env=env)
    assert refused.returncode != 0 and "CREATE privilege" in refused.stdout + refused.stderr
    planned = cli("plan", "--migrations", str(folder), env=env | {settings.SHADOW_DATABASE_URL: _shadow_url(pg_server)})
    assert planned.returncode == 0, planned.stderr
    assert 'ADD COLUMN "name"' in planned.stdout and "PostgreSQL 18" in planned.stderr
    assert PASSWORD not in planned.stdout + planned.stderr + refused.stdout + refused.stderr
