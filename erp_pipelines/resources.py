"""Dagster resources: the ERP's PostgreSQL database and its Prisma migrations folder.

Both take their settings from the environment (`ERP_DATABASE_URL`, `PRISMA_MIGRATIONS_DIR`) through
`dg.EnvVar`, so the same code runs on the embedded database, in tests and in production; tests swap
configuration, never code.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import psycopg
from pydantic import Field

from erp_pipelines.errors import DatabaseUnavailable, ErpPipelinesError, display_url, redact, remember_secret

DEMO_MIGRATIONS_DIR = Path(__file__).resolve().parent / "demo" / "prisma" / "migrations"


def psycopg_conninfo(url: str) -> str:
    """Accept SQLAlchemy-style URLs (`postgresql+psycopg://`) as well as plain libpq ones."""
    for prefix in ("postgresql+psycopg2://", "postgresql+psycopg://", "postgres+psycopg://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


class ErpDatabase(dg.ConfigurableResource):
    """The ERP's PostgreSQL database (psycopg 3). Every connection names itself and carries timeouts."""

    url: str = Field(description="libpq URL of the ERP database, e.g. from ERP_DATABASE_URL.")
    db_schema: str = Field(default="public", description="Schema holding the ERP's tables.")
    application_name: str = Field(default="erp-pipelines", description="Shown in pg_stat_activity.")
    lock_timeout_ms: int = Field(
        default=5000, description="Longest wait for a lock per statement, so the app is never stalled longer."
    )
    statement_timeout_ms: int = Field(default=30 * 60 * 1000, description="Longest single statement.")
    connect_timeout_s: int = Field(default=10, description="Give up connecting after this many seconds.")

    def safe_url(self) -> str:
        return display_url(self.url)

    @contextmanager
    def connect(self, purpose: str = "", autocommit: bool = False) -> Iterator[psycopg.Connection]:
        """A psycopg connection; raises DatabaseUnavailable (an ErpPipelinesError, no password
        in it) if the server cannot be reached."""
        conninfo = psycopg_conninfo(self.url)
        safe = self.safe_url()
        try:
            password = psycopg.conninfo.conninfo_to_dict(conninfo).get("password")
            remember_secret(str(password) if password else None)
        except psycopg.ProgrammingError as exc:
            raise ErpPipelinesError(
                "The ERP database URL cannot be parsed.",
                where="setting ERP_DATABASE_URL",
                fix="Use a libpq URL such as postgresql://user:password@host:5432/dbname.",
            ) from exc
        name = self.application_name + (f":{purpose}" if purpose else "")
        try:
            conn = psycopg.connect(
                conninfo,
                autocommit=autocommit,
                application_name=name[:63],
                connect_timeout=self.connect_timeout_s,
            )
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(
                f"Cannot connect to the ERP database: {redact(str(exc)).strip()}",
                where=f"ERP_DATABASE_URL = {safe}",
                fix="Check that the server is running and reachable and that the user, password and "
                "database name are right (make dev / make run start the embedded one).",
            ) from None
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT set_config('lock_timeout', %s, false)", (f"{self.lock_timeout_ms}ms",))
                cur.execute(
                    "SELECT set_config('statement_timeout', %s, false)", (f"{self.statement_timeout_ms}ms",)
                )
            if not autocommit:
                conn.commit()
            yield conn
        finally:
            conn.close()


class PrismaMigrationsFolder(dg.ConfigurableResource):
    """A Prisma Migrate `migrations/` folder: sub-folders holding `migration.sql`, in name order."""

    path: str = Field(
        default=str(DEMO_MIGRATIONS_DIR),
        description="Path of the prisma/migrations folder (PRISMA_MIGRATIONS_DIR); default: the demo ERP.",
    )

    def folder(self) -> Path:
        return Path(self.path).expanduser()


def erp_database_from_env() -> ErpDatabase:
    return ErpDatabase(url=dg.EnvVar("ERP_DATABASE_URL"))


def migrations_folder_from_env() -> PrismaMigrationsFolder:
    if os.environ.get("PRISMA_MIGRATIONS_DIR"):
        return PrismaMigrationsFolder(path=dg.EnvVar("PRISMA_MIGRATIONS_DIR"))
    return PrismaMigrationsFolder()
