"""When two ERP database identities are the same database (erp_pipelines/instance_binding.py): the rule a
Dagster instance uses to refuse a run against another database than the one it serves."""

from __future__ import annotations

import pytest

from erp_pipelines.instance_binding import DatabaseIdentity

DEMO = DatabaseIdentity("7715547482015476341", "/tmp/state/pgdata", 5432, "erp", "public", "postgresql://x@/erp")


@pytest.mark.parametrize(("other", "same"), [
    (DEMO, True),
    # one cluster reached another way (TCP instead of the socket, another host name): the same database
    (DatabaseIdentity(DEMO.system_identifier, "db.internal", 6432, "erp", "public"), True),
    (DatabaseIdentity(DEMO.system_identifier, DEMO.host, 5432, "other", "public"), False),
    (DatabaseIdentity(DEMO.system_identifier, DEMO.host, 5432, "erp", "tenant_a"), False),
    (DatabaseIdentity("6000000000000000001", DEMO.host, 5432, "erp", "public"), False),  # a second cluster
    # a role that may not read pg_control_system(): host and port decide
    (DatabaseIdentity(None, DEMO.host, 5432, "erp", "public"), True),
    (DatabaseIdentity(None, "db.internal", 5432, "erp", "public"), False),
])
def test_the_same_database_is_the_same_server_database_and_schema(other, same):
    assert DEMO.same_database(other) is same
    assert other.same_database(DEMO) is same


def test_a_binding_survives_its_json_round_trip_and_describes_itself_without_a_password():
    identity = DatabaseIdentity(None, "db.internal", 5432, "erp", "public", "postgresql://ops:***@db.internal/erp")
    assert DatabaseIdentity.from_json(identity.to_json()) == identity
    assert identity.describe() == ("database 'erp', schema 'public' on server db.internal:5432 "
                                   "(postgresql://ops:***@db.internal/erp)")
