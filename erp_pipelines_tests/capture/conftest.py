"""Fixtures of the change-capture tests: the ERP's tables with our schema and the capture triggers."""

from __future__ import annotations

import psycopg
import pytest

from erp_pipelines_tests.support.capture import install_capture


@pytest.fixture
def captured(erp_tables: psycopg.Connection) -> psycopg.Connection:
    """The ERP's tables (3 clients, 4 modules) with our schema and the capture triggers installed."""
    install_capture(erp_tables)
    return erp_tables
