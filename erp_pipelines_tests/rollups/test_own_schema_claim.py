"""One schema of ours per ERP schema: two ERP schemas of one database (schema-per-tenant) must not share a
ledger, or one tenant's pruned day would stop the other's aggregate from ever being built."""

from __future__ import annotations

import dagster as dg
import psycopg
import pytest

from erp_pipelines import own_schema
from erp_pipelines.resources import ErpDatabase
from erp_pipelines.rollups.assets import system_metric_daily
from erp_pipelines_tests.support.erp_data import create_erp_tables, insert_samples
from erp_pipelines_tests.support.rollups import ago, at, roll_up

DAY = ago(3)


def _tenant(conn: psycopg.Connection, schema: str) -> None:
    """The ERP's tables in a schema of their own, with one day of samples."""
    conn.execute(psycopg.sql.SQL("CREATE SCHEMA {}").format(psycopg.sql.Identifier(schema)))
    conn.execute(psycopg.sql.SQL("SET search_path TO {}").format(psycopg.sql.Identifier(schema)))
    create_erp_tables(conn)
    insert_samples(conn, [(100, 0.5, 10, 1, at(DAY, 1))])
    conn.execute("RESET search_path")


def _claim(conn: psycopg.Connection, schema: str) -> str | None:
    return conn.execute(own_schema.READ_CLAIM, {"schema": psycopg.sql.Identifier(schema).as_string(conn)}).fetchone()[0]


def test_a_second_erp_schema_stops_with_the_setting_to_change_and_writes_nothing(
    conn, erp_url, instance, monkeypatch
):
    _tenant(conn, "tenant_a")
    _tenant(conn, "tenant_b")
    monkeypatch.delenv(own_schema.OWN_SCHEMA_ENV, raising=False)
    roll_up({"erp_db": ErpDatabase(url=erp_url, db_schema="tenant_a")}, instance, DAY, assets=[system_metric_daily])
    assert _claim(conn, "erp_pipelines") == own_schema.claim_text("tenant_a")

    # `instance` is bound to tenant_a's schema (erp_pipelines/instance_binding.py): it refuses tenant_b first
    refused = roll_up({"erp_db": ErpDatabase(url=erp_url, db_schema="tenant_b")}, instance, DAY,
                      assets=[system_metric_daily], raise_on_error=False)
    failure = next(e for e in refused.all_events if e.is_step_failure).step_failure_data.error.message
    assert "not the one this Dagster instance serves" in failure and "schema 'tenant_b'" in failure

    # tenant_b with a Dagster instance of its own: what is tested here is our schema's claim
    with dg.instance_for_test() as tenant_b_instance:
        result = roll_up({"erp_db": ErpDatabase(url=erp_url, db_schema="tenant_b")}, tenant_b_instance, DAY,
                         assets=[system_metric_daily], raise_on_error=False)
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.message
        assert "tenant_a" in failure and "tenant_b" in failure and "ERP_PIPELINES_SCHEMA" in failure
        assert conn.execute("SELECT count(*) FROM tenant_b.system_metric_daily").fetchone()[0] == 0

        # its own schema of ours: it works, and each ledger holds its own tenant's day
        monkeypatch.setenv(own_schema.OWN_SCHEMA_ENV, "erp_pipelines_tenant_b")
        roll_up({"erp_db": ErpDatabase(url=erp_url, db_schema="tenant_b")}, tenant_b_instance, DAY,
                assets=[system_metric_daily])
        assert _claim(conn, "erp_pipelines_tenant_b") == own_schema.claim_text("tenant_b")
        assert conn.execute("SELECT count(*) FROM tenant_b.system_metric_daily").fetchone()[0] == 1
        for schema in ("erp_pipelines", "erp_pipelines_tenant_b"):
            assert conn.execute(
                psycopg.sql.SQL("SELECT count(*) FROM {}.rollup_ledger").format(psycopg.sql.Identifier(schema))
            ).fetchone()[0] == 1


def test_a_schema_without_a_claim_or_with_an_operators_comment_is_accepted():
    own_schema.check_claim("erp_pipelines", None, "public")
    own_schema.check_claim("erp_pipelines", "our ledger, ask ops", "public")
    own_schema.check_claim("erp_pipelines", own_schema.claim_text("public"), "public")
    with pytest.raises(Exception, match="tenant_a"):
        own_schema.check_claim("erp_pipelines", own_schema.claim_text("tenant_a"), "public")
