"""erp_pipelines/grants.py: the statements from the code, quoted and schema-qualified, and the GRANT a
permission error names."""

from __future__ import annotations

from erp_pipelines import grants
from erp_pipelines.rollups.registry import ROLLUPS

TARGET = grants.Target("erp db", "app", "ours")


def test_grants_name_every_table_a_rollup_declares_schema_qualified():
    text = grants.script("r", ["rollups", "retention"], TARGET)
    ours = grants.own_aggregates()
    for spec in ROLLUPS:
        for table in (*spec.privileges, *spec.retention_privileges):
            if table in ours:  # a declared rollup's aggregate: made in our schema by its first run
                assert 'GRANT USAGE, CREATE ON SCHEMA "ours" TO "r"' in text and f'"{table}"' not in text
            else:
                assert f'"app"."{table}"' in text
    assert '"ours"."rollup_ledger"' in text and 'GRANT CONNECT ON DATABASE "erp db" TO "r"' in text
    assert " ON client" not in text and " ON system" not in text  # never an unqualified table


def test_a_sequence_in_a_specs_privileges_gets_usage_on_sequence():
    text = grants.script("r", ["rollups"], TARGET)
    assert 'GRANT USAGE ON SEQUENCE "app"."system_metric_daily_id_seq" TO "r"' in text


def test_retention_alone_needs_no_insert_on_the_aggregates():
    text = grants.script("r", ["retention"], TARGET)
    assert 'GRANT SELECT, DELETE ON "app"."system_metric_daily" TO "r"' in text
    assert "INSERT" not in text.split('"ours"')[0]


def test_sync_owns_the_erp_schema_and_may_create_schemas():
    lines = [s.text for s in grants.statements('Odd "Role"', ["sync"], TARGET)]
    assert lines == ['GRANT CONNECT, CREATE ON DATABASE "erp db" TO "Odd ""Role"""',
                     'ALTER SCHEMA "app" OWNER TO "Odd ""Role"""']


def test_retentions_missing_grant_names_the_schema_qualified_table():
    obj, grant = grants.fix_for("permission denied for table client_usage_events", "r", TARGET, ["retention"])
    assert obj == 'table "app"."client_usage_events"'
    assert grant == 'GRANT SELECT, DELETE ON "app"."client_usage_events" TO "r"'


def test_a_missing_grant_on_our_schema_names_our_schema():
    assert grants.fix_for('permission denied for schema ours', "r", TARGET, ["rollups"]) == (
        'schema "ours"', 'GRANT USAGE, CREATE ON SCHEMA "ours" TO "r"')
    obj, grant = grants.fix_for("permission denied for table rollup_ledger", "r", TARGET, ["rollups"])
    assert obj == 'table "ours"."rollup_ledger"' and grant.endswith('ON "ours"."rollup_ledger" TO "r"')


def test_a_sync_denied_on_the_database_names_connect_and_create():
    obj, grant = grants.fix_for('permission denied for database erp', "r", TARGET, ["sync"])
    assert obj == 'database "erp"' and grant == 'GRANT CONNECT, CREATE ON DATABASE "erp db" TO "r"'
