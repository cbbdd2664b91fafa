"""Prisma-style database URLs: `?schema=` and Prisma's pool parameters never reach libpq."""

from __future__ import annotations

import pytest

from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.resources import ErpDatabase, psycopg_conninfo, schema_from_url


def test_schema_parameter_sets_the_schema_and_leaves_the_conninfo():
    db = ErpDatabase(url="postgresql://app:s3cret@db:5432/erp?schema=erp%20x&sslmode=require&connection_limit=5")
    assert db.db_schema == "erp x"
    assert psycopg_conninfo(db.url) == "postgresql://app:s3cret@db:5432/erp?sslmode=require"
    assert schema_from_url("postgresql://db/erp") is None
    assert ErpDatabase(url="postgresql://db/erp").db_schema == "public"


def test_sqlalchemy_prefix_and_prisma_parameters_together():
    assert psycopg_conninfo("postgresql+psycopg://db/erp?schema=s&pgbouncer=true") == "postgresql://db/erp"


def test_a_schema_in_the_url_and_a_different_explicit_schema_conflict_without_showing_the_password():
    db = ErpDatabase(url="postgresql://app:s3cret@db:5432/erp?schema=a", db_schema="b")
    with pytest.raises(ErpPipelinesError) as err, db.connect():
        pass
    message = str(err.value)
    assert "'a' in the URL" in message and "'b'" in message and "s3cret" not in message
