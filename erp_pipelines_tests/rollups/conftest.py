"""Fixtures of the rollup/retention/automation tests: the ERP's real tables on the real embedded PostgreSQL.

`erp_tables` runs the demo baseline migration (the ERP's 47 tables) on the test's fresh database, so the
rollups work on exactly the shapes the app has. The `erp_schema` / `system_health_config` assets are only
dependencies of ours, so the tables are created here rather than by materializing them.
"""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import psycopg
import pytest

from erp_pipelines.resources import ErpDatabase
from erp_pipelines_tests.support.erp_data import add_clients, add_modules, create_erp_tables


@pytest.fixture
def erp_tables(conn: psycopg.Connection) -> psycopg.Connection:
    """The test database with the ERP's tables, 3 clients and 4 modules; returns the autocommit connection."""
    create_erp_tables(conn)
    add_clients(conn, 3)
    add_modules(conn, 4)
    return conn


@pytest.fixture
def resources(erp_url: str) -> dict[str, ErpDatabase]:
    return {"erp_db": ErpDatabase(url=erp_url)}


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst
