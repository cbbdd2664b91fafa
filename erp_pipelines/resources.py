"""Dagster resources: the ERP's PostgreSQL database and its Prisma migrations folder.

Both take their settings from the environment (`ERP_DATABASE_URL`, `PRISMA_MIGRATIONS_DIR`) through
`dg.EnvVar`, so the same code runs on the embedded database, in tests and in production; tests swap
configuration, never code.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dagster as dg
import psycopg
from psycopg import sql
from pydantic import Field, PrivateAttr, model_validator

from erp_pipelines import settings
from erp_pipelines.errors import DatabaseUnavailable, ErpPipelinesError, display_url, redact, remember_secret

if TYPE_CHECKING:
    from erp_pipelines.instance_binding import DatabaseIdentity

DEMO_MIGRATIONS_DIR = Path(__file__).resolve().parent / "demo" / "prisma" / "migrations"


# Query parameters of a Prisma DATABASE_URL that libpq does not know (it refuses unknown ones).
PRISMA_URL_PARAMS = ("schema", "connection_limit", "pool_timeout", "pgbouncer", "socket_timeout",
                     "statement_cache_size", "sslaccept")


def _query(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True) if "?" in url else []


def schema_from_url(url: str) -> str | None:
    """The schema of a Prisma-style `?schema=NAME` URL parameter, or None."""
    values = [v for k, v in _query(url) if k == "schema"]
    return values[-1] if values else None


def _host(conninfo: str) -> str | None:
    try:
        return psycopg.conninfo.conninfo_to_dict(conninfo).get("host")
    except psycopg.ProgrammingError:
        return None


def psycopg_conninfo(url: str) -> str:
    """Accept SQLAlchemy-style URLs (`postgresql+psycopg://`) and Prisma's `DATABASE_URL` (its `?schema=` and
    pool parameters are not libpq's: removed) as well as plain libpq ones."""
    for prefix in ("postgresql+psycopg2://", "postgresql+psycopg://", "postgres+psycopg://"):
        if url.startswith(prefix):
            url = "postgresql://" + url[len(prefix) :]
            break
    query = _query(url)
    if any(k in PRISMA_URL_PARAMS for k, _ in query):
        kept = [(k, v) for k, v in query if k not in PRISMA_URL_PARAMS]
        url = urlunsplit(urlsplit(url)._replace(query=urlencode(kept)))
    return url


def session_setup(settings_: Mapping[str, str]) -> sql.Composed:
    """`SELECT set_config(name, value, false), ...`: session settings in one statement (values as literals,
    so it also runs where a statement without parameters is wanted)."""
    return sql.SQL("SELECT {}").format(
        sql.SQL(", ").join(
            sql.SQL("set_config({}, {}, false)").format(sql.Literal(name), sql.Literal(value))
            for name, value in settings_.items()
        )
    )


class StatementNotingCursor(psycopg.Cursor):
    """A cursor that adds the statement to a permission error as a note (`exc.__notes__[-1]`), so the
    error a user reads names the statement, not only the object (dbwork.missing_grant, prisma/sync.py)."""

    def execute(self, query, params=None, **kwargs):  # type: ignore[override]
        try:
            return super().execute(query, params, **kwargs)
        except psycopg.errors.InsufficientPrivilege as exc:
            text = query.as_string(self.connection) if isinstance(query, sql.Composable) else query
            text = text.decode() if isinstance(text, bytes) else str(text)
            exc.add_note(" ".join(text.split())[:500])
            raise


class ErpDatabase(dg.ConfigurableResource):
    """The ERP's PostgreSQL database (psycopg 3). Every connection names itself and carries timeouts."""

    url: str = Field(description="libpq URL of the ERP database, e.g. from ERP_DATABASE_URL.")
    db_schema: str = Field(
        default="public",
        description="Schema holding the ERP's tables (ERP_DATABASE_SCHEMA, or ?schema= in the URL as Prisma reads it).",
    )
    application_name: str = Field(default="erp-pipelines", description="Shown in pg_stat_activity.")
    lock_timeout_ms: int = Field(
        default=5000, description="Longest wait for a lock per statement, so the app is never stalled longer."
    )
    statement_timeout_ms: int = Field(default=30 * 60 * 1000, description="Longest single statement.")
    connect_timeout_s: int = Field(default=10, description="Give up connecting after this many seconds.")

    @model_validator(mode="before")
    @classmethod
    def _schema_from_url(cls, values: Any) -> Any:
        """`?schema=NAME` in the URL sets db_schema when db_schema is not given; a different explicit db_schema
        (e.g. ERP_DATABASE_SCHEMA) is a conflict that `connect` reports."""
        if isinstance(values, dict) and isinstance(values.get("url"), str) and not isinstance(values["url"], dg.EnvVar):
            in_url = schema_from_url(values["url"])
            if in_url and values.get("db_schema") is None:
                values = {**values, "db_schema": in_url}
        return values

    def safe_url(self) -> str:
        return display_url(self.url)

    _bound_instance: Any = PrivateAttr(default=None)  # a run's instance whose binding is still to be checked

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """In a run: the run's first connection checks that the instance serves this database, or records it on
        the instance's first run (erp_pipelines/instance_binding.py). Done on that connection, not here, so a
        server that is restarting is a retryable DatabaseUnavailable of the step, as before."""
        if context.instance is not None and context.dagster_run is not None:
            self._bound_instance = context.instance

    def identity(self) -> DatabaseIdentity:
        """Which database this resource reaches (server, database, schema); reads only."""
        from erp_pipelines.instance_binding import read_identity

        with self.connect("identity", autocommit=True) as conn:
            return read_identity(conn, self.db_schema, self.url)

    @contextmanager
    def connect(
        self, purpose: str = "", autocommit: bool = False, session: Mapping[str, str] | None = None
    ) -> Iterator[psycopg.Connection]:
        """A psycopg connection; raises DatabaseUnavailable (an ErpPipelinesError, no password
        in it) if the server cannot be reached.

        Its session settings (the timeouts, then `session`: name -> value) are set in ONE statement sent
        in autocommit mode before the connection takes the mode asked for: one round trip instead of three
        (BEGIN, the statement, COMMIT), which a short step pays on every connection."""
        conninfo = psycopg_conninfo(self.url)
        safe = self.safe_url()
        in_url = schema_from_url(self.url)
        if in_url and in_url != self.db_schema:
            raise ErpPipelinesError(
                f"Two different schemas are configured: {in_url!r} in the URL (?schema=) and {self.db_schema!r} "
                "(ERP_DATABASE_SCHEMA or the resource's db_schema).",
                where=f"ERP_DATABASE_URL = {safe}",
                fix="Keep one of them, or make them name the same schema.",
            )
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
                autocommit=True,
                application_name=name[:63],
                connect_timeout=self.connect_timeout_s,
                cursor_factory=StatementNotingCursor,
            )
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(
                f"Cannot connect to the ERP database: {redact(str(exc)).strip()}",
                where=f"ERP_DATABASE_URL = {safe}",
                fix=settings.unreachable_hint(_host(conninfo), "the ERP database"),
            ) from None
        try:
            settings_ = {
                "lock_timeout": f"{self.lock_timeout_ms}ms",
                "statement_timeout": f"{self.statement_timeout_ms}ms",
                **(session or {}),
            }
            conn.execute(session_setup(settings_))
            if self._bound_instance is not None:  # before the run's first statement of its own
                from erp_pipelines.instance_binding import check_or_bind, read_identity

                check_or_bind(self._bound_instance, read_identity(conn, self.db_schema, self.url))
                self._bound_instance = None
            conn.autocommit = autocommit
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
    """ERP_DATABASE_URL (a `?schema=` in it is honoured) and, if set, ERP_DATABASE_SCHEMA."""
    if settings.erp_database_schema():
        return ErpDatabase(url=dg.EnvVar(settings.ERP_DATABASE_URL), db_schema=dg.EnvVar(settings.ERP_DATABASE_SCHEMA))
    return ErpDatabase(url=dg.EnvVar(settings.ERP_DATABASE_URL))


def migrations_folder_from_env() -> PrismaMigrationsFolder:
    if settings.migrations_dir():
        return PrismaMigrationsFolder(path=dg.EnvVar(settings.PRISMA_MIGRATIONS_DIR))
    return PrismaMigrationsFolder()


def erp_database() -> ErpDatabase:
    """For the runner and the CLI: the resource the assets get (erp_database_from_env), with its settings
    read now; an unset ERP_DATABASE_URL is our error naming the variable. (Here, not in settings.py, so
    settings never imports resources: resources reads settings, not the other way round.)"""
    settings.require_erp_database_url()
    return erp_database_from_env().process_config_and_initialize()
