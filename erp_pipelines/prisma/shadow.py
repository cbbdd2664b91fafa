"""Where the replay runs: the ERP database itself, or a shadow database (`ERP_SHADOW_DATABASE_URL`, Prisma's
`shadowDatabaseUrl` idea) for a role that may not CREATE a schema on the production database.

Either way the replay writes nothing that outlives it (its throw-away schemas are rolled back). A shadow
server whose major differs from the target's is named in a warning: the replay then judges the history by
another PostgreSQL than the one it will run on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from erp_pipelines import settings
from erp_pipelines.errors import DatabaseUnavailable, display_url, redact

REPLAY_APPLICATION_NAME = "erp-pipelines-replay"


def in_shadow_database(conn: psycopg.Connection) -> bool:
    """True when `conn` is the shadow database's connection (`replay_connection`): nothing live is there."""
    return conn.info.parameter_status("application_name") == REPLAY_APPLICATION_NAME


def _major(conn: psycopg.Connection) -> int:
    return conn.info.server_version // 10000


@contextmanager
def replay_connection(
    target: psycopg.Connection, warn: Callable[[str], None] = print, env: settings.Env | None = None
) -> Iterator[psycopg.Connection]:
    """The connection the replay runs on: a new one to the shadow database when ERP_SHADOW_DATABASE_URL is
    set, else `target` itself."""
    url = settings.shadow_database_url(env)
    if not url:
        yield target
        return
    try:
        shadow = psycopg.connect(url, autocommit=True, application_name=REPLAY_APPLICATION_NAME, connect_timeout=10)
    except psycopg.Error as exc:
        raise DatabaseUnavailable(
            f"The shadow database cannot be reached: {redact(str(exc)).strip()}.",
            where=f"environment variable {settings.SHADOW_DATABASE_URL} ({redact(display_url(url))})",
            fix=f"Correct {settings.SHADOW_DATABASE_URL}, or unset it to replay in the ERP database itself.",
        ) from None
    with shadow:
        if _major(shadow) != _major(target):
            warn(
                f"The shadow database ({redact(display_url(url))}) runs PostgreSQL {_major(shadow)}, the ERP database "
                f"PostgreSQL {_major(target)}: the history is replayed on another major than the one it runs on. "
                f"Point {settings.SHADOW_DATABASE_URL} at a PostgreSQL {_major(target)} server for a faithful replay."
            )
        yield shadow
