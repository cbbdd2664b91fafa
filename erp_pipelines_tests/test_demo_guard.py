"""The demo and the user's own database never mix (issue 17, item 1), as a user meets it: real processes, the
embedded demo server, a second real PostgreSQL standing in for the user's own.

The story: `make run` builds the demo; the user then exports ERP_DATABASE_URL for their own database (the
README's own-database section); `make run` in that shell must refuse before any write, and a materialization
with the demo's Dagster instance must be refused naming both databases — never "already done".
"""

from __future__ import annotations

import psycopg
import pytest

from erp_pipelines_tests.support.commands import dagster, erp_pipelines, exported
from erp_pipelines_tests.support.databases import new_database

PASSWORD = "Own-Db-Secret-4711"  # in the own database's URL; trust auth ignores it, no output may show it
FOOTPRINT = """
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'),
       (SELECT count(*) FROM pg_namespace),
       (SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database())
"""


def own_database(pg_server) -> tuple[str, str]:
    """(URL with a password, database name) of a fresh database on another server than the demo's."""
    url = new_database(pg_server)
    name = url.split("?")[0].rsplit("/", 1)[1]
    return url.replace("postgres:@", f"postgres:{PASSWORD}@", 1), name


def footprint(url: str) -> tuple:
    """What any write of ours would change: relations, schemas, the database's comment."""
    with psycopg.connect(url) as conn:
        return conn.execute(FOOTPRINT).fetchone()


@pytest.mark.slow
def test_make_run_refuses_an_own_database_and_the_demo_instance_refuses_to_materialize_there(server_state, pg_server):
    base = {"ERP_PIPELINES_STATE_DIR": str(server_state)}
    try:
        demo = erp_pipelines("run", "--events", "2000", "--days", "3", env=base)
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]

        own_url, own_name = own_database(pg_server)
        before = footprint(own_url)
        refused = erp_pipelines("run", "--events", "2000", "--days", "3", env={**base, "ERP_DATABASE_URL": own_url})
        assert refused.returncode == 2, refused.stdout[-3000:] + refused.stderr[-3000:]
        assert f"database '{own_name}' is not the embedded demo database" in refused.stderr
        for way in ("make plan", "schema_sync_job", "dagster asset materialize", "--demo-into-this-database"):
            assert way in refused.stderr
        assert "Traceback" not in refused.stderr
        assert PASSWORD not in refused.stdout + refused.stderr
        assert footprint(own_url) == before

        exports = exported(erp_pipelines("env", env={**base, "ERP_DATABASE_URL": own_url}).stdout)
        assert exports["DAGSTER_HOME"] == str(server_state / "dagster_home")  # the demo's instance
        assert exports["ERP_DATABASE_URL"] == own_url
        out = dagster("asset", "materialize", "-m", "erp_pipelines.definitions", "--select", "erp_schema",
                      env=exports)
        text = out.stdout + out.stderr
        assert out.returncode != 0
        assert "not the one this Dagster instance serves" in text
        assert "the instance is bound to database 'erp'" in text and f"this run points at database '{own_name}'" in text
        assert PASSWORD not in text
        assert footprint(own_url) == before
    finally:
        erp_pipelines("db", "stop", env=base)


def test_demo_into_this_database_must_name_the_database_the_url_points_at(pg_server, server_state):
    own_url, own_name = own_database(pg_server)
    before = footprint(own_url)
    env = {"ERP_PIPELINES_STATE_DIR": str(server_state), "ERP_DATABASE_URL": own_url,
           "DAGSTER_PG_URL": new_database(pg_server)}
    out = erp_pipelines("run", "--demo-into-this-database", "production", env=env)
    assert out.returncode == 2
    assert f"names 'production', but ERP_DATABASE_URL points at database '{own_name}'" in out.stderr
    assert PASSWORD not in out.stdout + out.stderr
    assert footprint(own_url) == before
