"""Shared fixtures: one real embedded PostgreSQL 18 per test session, a fresh database per test.

Nothing here is mocked: tests talk to a real server through psycopg 3 and run real Dagster.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from erp_pipelines.resources import DEMO_MIGRATIONS_DIR, ErpDatabase
from erp_pipelines_tests.support.databases import embedded_server, new_database, server_folder
from erp_pipelines_tests.support.erp_data import add_clients, add_modules, create_erp_tables
from erp_pipelines_tests.support.instances import fresh_instance
from erp_pipelines_tests.support.pg15 import Pg15Server, start_pg15


def _signals_as_in_a_terminal() -> None:
    """A suite started in the background by a non-interactive shell (`make test &`, some CI runners) inherits
    SIGINT ignored. Dagster maps SIGTERM to SIGINT's handler inside in-process runs
    (dagster._utils.interrupts.setup_interrupt_handlers), so SIGTERM became ignored too, and every `tail` its
    compute-log capture starts inherited that: each capture then waited 30 s for a `tail` that would not
    stop. Restore what a terminal gives, before anything runs."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


_signals_as_in_a_terminal()


@pytest.fixture(scope="session")
def pg_server():
    with embedded_server("pg") as server:
        yield server


@pytest.fixture(scope="session")
def pg15_server() -> Iterator[Pg15Server]:
    """Debian's PostgreSQL 15, started once per session; fails with the install hint when it is missing."""
    server = start_pg15()
    yield server
    server.stop()


@pytest.fixture
def server_state() -> Iterator[Path]:
    """An empty folder for an embedded server's state (`ERP_PIPELINES_STATE_DIR`), outside pytest's own
    temporary folder (see erp_pipelines_tests/support/databases.py)."""
    with server_folder("state") as folder:
        yield folder


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


@pytest.fixture
def erp_tables(conn: psycopg.Connection) -> psycopg.Connection:
    """The test database with the ERP's tables (the demo baseline), 3 clients and 4 modules; returns the
    autocommit connection. The `erp_schema` asset is only a dependency of the rollups, so the tables are
    created here rather than by materializing it."""
    create_erp_tables(conn)
    add_clients(conn, 3)
    add_modules(conn, 4)
    return conn


@pytest.fixture
def resources(erp_url: str) -> dict[str, ErpDatabase]:
    """The resources of sensors and `dg.materialize` calls, on this test's database."""
    return {"erp_db": ErpDatabase(url=erp_url)}


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A real, temporary Dagster instance of this test alone (support/instances.py: a copy of an empty
    instance folder made once, instead of new SQLite storages per test)."""
    with fresh_instance() as inst:
        yield inst
