"""Fresh databases on the session's embedded PostgreSQL (the `pg_server` fixture in conftest.py)."""

from __future__ import annotations

import uuid

from erp_pipelines.embedded import ensure_database


def new_database(pg_server) -> str:
    """URL of a new, empty database with a unique name on `pg_server`."""
    name = "t_" + uuid.uuid4().hex[:16]
    ensure_database(pg_server.get_uri(), name)
    return pg_server.get_uri(name)
