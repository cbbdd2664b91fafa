"""Fixtures of the change-capture tests: the ERP's tables with the capture triggers, a Dagster instance."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import psycopg
import pytest

from erp_pipelines.resources import ErpDatabase
from erp_pipelines_tests.support.capture import install_capture
from erp_pipelines_tests.support.erp_data import add_clients, add_modules, create_erp_tables


@pytest.fixture
def captured(conn: psycopg.Connection) -> psycopg.Connection:
    """The ERP's tables (3 clients, 4 modules) with our schema and the capture triggers installed."""
    create_erp_tables(conn)
    add_clients(conn, 3)
    add_modules(conn, 4)
    install_capture(conn)
    return conn


@pytest.fixture
def resources(erp_url: str) -> dict[str, ErpDatabase]:
    return {"erp_db": ErpDatabase(url=erp_url)}


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst
