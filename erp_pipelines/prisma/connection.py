"""The small connection protocol the Dagster-free core (`erp_pipelines.prisma`, `erp_pipelines.own_schema`)
takes instead of a Dagster resource.

`erp_pipelines.resources.ErpDatabase` satisfies it structurally, and so does any test helper with the same
four members, so the core can be used (and tested) without importing Dagster.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

import psycopg


class Connector(Protocol):
    """Opens named psycopg connections to one database and knows the schema the ERP lives in."""

    db_schema: str
    lock_timeout_ms: int

    def connect(self, purpose: str = "", autocommit: bool = False) -> AbstractContextManager[psycopg.Connection]:
        """A connection carrying our timeouts; raises `DatabaseUnavailable` when the server cannot be reached."""
        ...

    def safe_url(self) -> str:
        """The URL with its password replaced, for messages."""
        ...
