"""The schema suite runs on two PostgreSQL majors: the embedded 18 and Debian's 15 (with contrib).

`erp_url` here overrides the root one: each schema test gets a fresh database on the server of its
`pg_major` parameter, so every test of this folder runs once per major (`-k "15"` picks one).
"""

from __future__ import annotations

import pytest

from erp_pipelines_tests.support.databases import new_database


@pytest.fixture(params=["18", "15"])
def pg_major(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def erp_url(pg_major: str, request: pytest.FixtureRequest) -> str:
    """URL of a fresh, empty database on the PostgreSQL major of this test's parameter."""
    return new_database(request.getfixturevalue("pg_server" if pg_major == "18" else "pg15_server"))
