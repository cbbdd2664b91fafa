"""Fresh non-superuser login roles on a test server, and the URLs they log in with.

For the tests that run the printed GRANTs verbatim (test_grants_pg15.py, test_journey_own_database.py):
each role gets a random name suffix and password, and is dropped (with what it owns) afterwards.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql


def role_url(admin_url: str, dbname: str, role: str, password: str) -> str:
    """The admin URL with another user, password and database (host and port kept)."""
    parts = urlsplit(admin_url)
    netloc = f"{role}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, f"/{dbname}", parts.query, ""))


@contextmanager
def login_roles(admin_url: str, *prefixes: str) -> Iterator[tuple[list[str], str]]:
    """Create LOGIN roles `<prefix>_<hex>` (no other attribute) with one random password; drop them after."""
    suffix, password = secrets.token_hex(4), "Pw" + secrets.token_hex(12)
    names = [f"{prefix}_{suffix}" for prefix in prefixes]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        for name in names:
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))
    try:
        yield names, password
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            for name in names:
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def drop_database(admin_url: str, dbname: str, roles: list[str]) -> None:
    """Drop a test database and everything the roles own in it (so the roles can be dropped)."""
    with psycopg.connect(role_url(admin_url, dbname, *_admin(admin_url)), autocommit=True) as c:
        for name in roles:
            c.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(name)))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def _admin(admin_url: str) -> tuple[str, str]:
    parts = urlsplit(admin_url)
    return parts.username or "postgres", parts.password or ""
