"""Fixtures of the reliability suite (its helpers are in erp_pipelines_tests/support/processes.py and
support/snapshots.py)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest


@pytest.fixture
def admin_conn(pg_server) -> Iterator[psycopg.Connection]:
    """Autocommit connection to the server's `postgres` database (roles, pg_hba, terminate)."""
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as c:
        yield c
