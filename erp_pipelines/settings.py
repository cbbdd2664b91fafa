"""Every environment setting of the project, read in this one module and handed on as typed values.

Why one place: the runner, the CLI, the assets' resources and `make dev` must agree on what a setting means
(ERP_DATABASE_URL was read in five places with five fallbacks). Other modules ask here; only the Dagster
resources name variables themselves, through `dg.EnvVar(<name from here>)`, so runs read them at run time.

Dagster's own storage is configured from separate parts (DAGSTER_PG_USERNAME, DAGSTER_PG_PASSWORD,
DAGSTER_PG_HOST, DAGSTER_PG_PORT, DAGSTER_PG_DB; see dagster.yaml), so its password is a setting of its own
and never part of a URL Dagster could print. DAGSTER_PG_URL still works: `DagsterStorage.from_env` derives
the parts from it, and `erp-pipelines env` / `make run` / `make dev` export them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from erp_pipelines.errors import DatabaseUnavailable, ErpPipelinesError, redact, remember_secret

PROJECT_ROOT = Path(__file__).resolve().parent.parent

ERP_DATABASE_URL = "ERP_DATABASE_URL"
ERP_DATABASE_SCHEMA = "ERP_DATABASE_SCHEMA"
PRISMA_MIGRATIONS_DIR = "PRISMA_MIGRATIONS_DIR"
ROLLUP_START_DATE = "ERP_ROLLUP_START_DATE"
STATE_DIR = "ERP_PIPELINES_STATE_DIR"
DAGSTER_HOME = "DAGSTER_HOME"
DAGSTER_PG_URL = "DAGSTER_PG_URL"
DAGSTER_PG_USERNAME = "DAGSTER_PG_USERNAME"
DAGSTER_PG_PASSWORD = "DAGSTER_PG_PASSWORD"
DAGSTER_PG_HOST = "DAGSTER_PG_HOST"
DAGSTER_PG_PORT = "DAGSTER_PG_PORT"
DAGSTER_PG_DB = "DAGSTER_PG_DB"
OWN_SCHEMA = "ERP_PIPELINES_SCHEMA"
CHANGE_CAPTURE = "ERP_PIPELINES_CHANGE_CAPTURE"
ROLLUP_LOOKBACK_DAYS = "ERP_ROLLUP_LOOKBACK_DAYS"
REPLAY_FROM = "ERP_REPLAY_FROM"
BASELINE_MIGRATION = "ERP_BASELINE_MIGRATION"
SHADOW_DATABASE_URL = "ERP_SHADOW_DATABASE_URL"
DAGSTER_PG_PARTS = (DAGSTER_PG_USERNAME, DAGSTER_PG_PASSWORD, DAGSTER_PG_HOST, DAGSTER_PG_PORT, DAGSTER_PG_DB)

DEFAULT_ROLLUP_START_DATE = "2025-01-01"
DEFAULT_OWN_SCHEMA = "erp_pipelines"
DEFAULT_LOOKBACK_DAYS = 2
MAX_LOOKBACK_DAYS = 30
_ON = {"", "on", "true", "1", "yes"}
_OFF = {"off", "false", "0", "no"}
DEFAULT_PG_PORT = 5432
STORAGE_CHECK_TIMEOUT_S = 5

Env = Mapping[str, str]


def _get(env: Env | None, name: str) -> str:
    return ((os.environ if env is None else env).get(name) or "").strip()


def erp_database_url(env: Env | None = None) -> str | None:
    """ERP_DATABASE_URL, or None when unset (callers then start the embedded server)."""
    return _get(env, ERP_DATABASE_URL) or None


def require_erp_database_url(env: Env | None = None) -> str:
    url = erp_database_url(env)
    if not url:
        raise ErpPipelinesError(
            "The ERP database is not set.",
            where=f"environment variable {ERP_DATABASE_URL}",
            fix="Set it to a libpq URL (postgresql://user:password@host:5432/dbname), or run "
            '`eval "$(erp-pipelines env)"` to use the embedded server.',
        )
    return url


def erp_database():
    """For the runner and the CLI: the resource the assets get (resources.erp_database_from_env), with its
    settings read now; an unset ERP_DATABASE_URL is our error naming the variable."""
    from erp_pipelines.resources import erp_database_from_env

    require_erp_database_url()
    return erp_database_from_env().process_config_and_initialize()


def erp_database_schema(env: Env | None = None) -> str | None:
    """ERP_DATABASE_SCHEMA, or None (then a `?schema=` in ERP_DATABASE_URL, else `public`)."""
    return _get(env, ERP_DATABASE_SCHEMA) or None


def migrations_dir(env: Env | None = None) -> str | None:
    """PRISMA_MIGRATIONS_DIR, or None for the demo ERP's folder."""
    return _get(env, PRISMA_MIGRATIONS_DIR) or None


def replay_from(env: Env | None = None) -> str | None:
    """ERP_REPLAY_FROM: the first migration the replay runs, for erp_schema and prisma_migration_history alike."""
    return _get(env, REPLAY_FROM) or None


def baseline_migration(env: Env | None = None) -> str | None:
    """ERP_BASELINE_MIGRATION: the baseline migration, for erp_schema and prisma_migration_history alike."""
    return _get(env, BASELINE_MIGRATION) or None


def shadow_database_url(env: Env | None = None) -> str | None:
    """ERP_SHADOW_DATABASE_URL (Prisma's shadowDatabaseUrl idea): where the replay runs instead of the ERP
    database, or None. Its password is registered so that no message prints it."""
    url = _get(env, SHADOW_DATABASE_URL) or None
    if url:
        from psycopg.conninfo import conninfo_to_dict

        try:
            remember_secret(str(conninfo_to_dict(url).get("password") or "") or None)
        except Exception:  # noqa: BLE001 - an unreadable URL is reported when it is used, never printed whole
            remember_secret(urlsplit(url).password)
    return url


def own_schema(env: Env | None = None) -> str:
    """ERP_PIPELINES_SCHEMA: the schema of our own ledger and change log (default `erp_pipelines`)."""
    return _get(env, OWN_SCHEMA) or DEFAULT_OWN_SCHEMA


def change_capture(env: Env | None = None) -> bool:
    """ERP_PIPELINES_CHANGE_CAPTURE: `off` opts out of the change-capture triggers (on by default)."""
    value = _get(env, CHANGE_CAPTURE).lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise ErpPipelinesError(
        f"{CHANGE_CAPTURE}={value!r} is neither on nor off.",
        where=f"environment variable {CHANGE_CAPTURE}",
        fix="Set it to `off` to opt out of the change-capture triggers, or unset it (on).",
    )


def rollup_lookback_days(env: Env | None = None) -> int:
    """ERP_ROLLUP_LOOKBACK_DAYS (default 2): days before yesterday the nightly run re-rolls; 0 = none."""
    value = _get(env, ROLLUP_LOOKBACK_DAYS)
    if not value:
        return DEFAULT_LOOKBACK_DAYS
    if not value.isdigit() or int(value) > MAX_LOOKBACK_DAYS:
        raise ErpPipelinesError(
            f"{ROLLUP_LOOKBACK_DAYS}={value!r} is not a whole number of days from 0 to {MAX_LOOKBACK_DAYS}.",
            where=f"environment variable {ROLLUP_LOOKBACK_DAYS}",
            fix=f"Set it to 0..{MAX_LOOKBACK_DAYS} (0 turns the lookback off), or unset it for "
            f"{DEFAULT_LOOKBACK_DAYS}.",
        )
    return int(value)


def rollup_start_date(env: Env | None = None) -> str:
    """The first partition day (YYYY-MM-DD) from ERP_ROLLUP_START_DATE, validated."""
    value = _get(env, ROLLUP_START_DATE) or DEFAULT_ROLLUP_START_DATE
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ErpPipelinesError(
            f"The rollup start date {value!r} is not a date.",
            where=f"environment variable {ROLLUP_START_DATE}",
            fix="Use the ISO form YYYY-MM-DD, e.g. 2025-01-01 (the first day the ERP has data for).",
        ) from None
    return value


def state_dir(env: Env | None = None) -> Path:
    """Where the embedded server and Dagster's home live (ERP_PIPELINES_STATE_DIR, default .erp-pipelines/)."""
    value = _get(env, STATE_DIR)
    return Path(value) if value else PROJECT_ROOT / ".erp-pipelines"


def dagster_home(env: Env | None = None) -> Path | None:
    value = _get(env, DAGSTER_HOME)
    return Path(value) if value else None


def _port(value: str) -> int:
    value = value.strip() or str(DEFAULT_PG_PORT)
    if not value.isdigit():
        raise ErpPipelinesError(
            f"Dagster's storage port {value!r} is not a number.",
            where=f"environment variable {DAGSTER_PG_PORT}",
            fix="Set it to the server's port, e.g. 5432.",
        )
    return int(value)


@dataclass(frozen=True)
class DagsterStorage:
    """Where Dagster keeps runs, event logs and schedules: the parts dagster.yaml's `postgres_db` reads.

    `params` are extra libpq parameters (the query of DAGSTER_PG_URL, e.g. `host` for a Unix socket or
    `sslmode`); they go to `params` of the dagster.yaml that `erp-pipelines` writes to DAGSTER_HOME.
    """

    username: str
    password: str = field(repr=False)
    host: str
    port: int = DEFAULT_PG_PORT
    db_name: str = "dagster"
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_url(cls, url: str) -> DagsterStorage:
        """Parts of a `postgresql[+driver]://user:password@host:port/db?params` URL (host may be a socket
        directory given as `?host=/path`)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            parts, port = None, None
        if parts is None or not parts.scheme.startswith(("postgresql", "postgres")) or not parts.path.strip("/"):
            raise ErpPipelinesError(
                "Dagster's storage URL cannot be parsed.",
                where=f"environment variable {DAGSTER_PG_URL}",
                fix="Use postgresql://user:password@host:5432/dbname, or set DAGSTER_PG_USERNAME, "
                "DAGSTER_PG_PASSWORD, DAGSTER_PG_HOST, DAGSTER_PG_PORT and DAGSTER_PG_DB instead.",
            )
        password = unquote(parts.password or "")
        remember_secret(password)
        return cls(
            username=unquote(parts.username or ""),
            password=password,
            host=parts.hostname or "",
            port=port or DEFAULT_PG_PORT,
            db_name=unquote(parts.path.strip("/")),
            params=dict(parse_qsl(parts.query)),
        )

    @classmethod
    def from_env(cls, env: Env | None = None) -> DagsterStorage | None:
        """The parts when DAGSTER_PG_HOST or DAGSTER_PG_DB is set, else derived from DAGSTER_PG_URL, else None."""
        if _get(env, DAGSTER_PG_HOST) or _get(env, DAGSTER_PG_DB):
            port = _port(_get(env, DAGSTER_PG_PORT))
            password = (os.environ if env is None else env).get(DAGSTER_PG_PASSWORD, "")
            remember_secret(password)
            return cls(
                username=_get(env, DAGSTER_PG_USERNAME),
                password=password,
                host=_get(env, DAGSTER_PG_HOST),
                port=port,
                db_name=_get(env, DAGSTER_PG_DB),
            )
        url = _get(env, DAGSTER_PG_URL)
        return cls.from_url(url) if url else None

    def env(self) -> dict[str, str]:
        """The variables dagster.yaml reads (every one set, the password possibly empty)."""
        return {
            DAGSTER_PG_USERNAME: self.username,
            DAGSTER_PG_PASSWORD: self.password,
            DAGSTER_PG_HOST: self.host,
            DAGSTER_PG_PORT: str(self.port),
            DAGSTER_PG_DB: self.db_name,
        }

    def display(self) -> str:
        """user@host:port/db (no password): where a message says which server it means."""
        host = self.host or self.params.get("host", "")
        return f"{self.username}@{host}:{self.port}/{self.db_name}"

    def connect_kwargs(self) -> dict[str, str | int]:
        """libpq keywords for a connection of our own (the pre-flight check)."""
        kwargs: dict[str, str | int] = {**self.params, "user": self.username, "dbname": self.db_name}
        kwargs["port"] = self.port
        if self.host:
            kwargs["host"] = self.host
        if self.password:
            kwargs["password"] = self.password
        kwargs.setdefault("connect_timeout", STORAGE_CHECK_TIMEOUT_S)
        return kwargs


def _config_value(value: object, env: Env | None, what: str) -> str:
    """A dagster.yaml value: a literal, or `{env: NAME}` read from the environment (as Dagster reads it)."""
    if isinstance(value, dict) and "env" in value:
        name = str(value["env"])
        found = (os.environ if env is None else env).get(name)
        if found is None:
            raise ErpPipelinesError(
                f"Dagster's storage {what} is not set.",
                where=f"environment variable {name} (read by dagster.yaml)",
                fix='Run `eval "$(erp-pipelines env)"` (it derives the DAGSTER_PG_* parts from DAGSTER_PG_URL '
                "or the embedded server), or set it yourself.",
            )
        return found
    return "" if value is None else str(value)


def instance_storage(home: Path, env: Env | None = None) -> DagsterStorage | None:
    """The PostgreSQL storage the dagster.yaml in `home` points at, resolved as Dagster resolves it, or None
    when the instance keeps its storage elsewhere (no dagster.yaml, or not `storage: postgres`)."""
    import yaml

    path = home / "dagster.yaml"
    if not path.is_file():
        return None
    config = yaml.safe_load(path.read_text("utf-8")) or {}
    postgres = (config.get("storage") or {}).get("postgres")
    if not isinstance(postgres, dict):
        return None
    if "postgres_url" in postgres:
        return DagsterStorage.from_url(_config_value(postgres["postgres_url"], env, "URL"))
    parts = postgres.get("postgres_db") or {}
    port = _port(_config_value(parts.get("port", DEFAULT_PG_PORT), env, "port"))
    password = _config_value(parts.get("password", ""), env, "password")
    remember_secret(password)
    return DagsterStorage(
        username=_config_value(parts.get("username"), env, "user name"),
        password=password,
        host=_config_value(parts.get("hostname"), env, "host"),
        port=port,
        db_name=_config_value(parts.get("db_name"), env, "database name"),
        params={str(k): str(v) for k, v in (parts.get("params") or {}).items()},
    )


def check_dagster_storage(home: Path | None = None, env: Env | None = None) -> None:
    """Connect once to the storage of the Dagster instance in `home` (default DAGSTER_HOME) before Dagster
    does: an unreachable server or a wrong password is reported here, in one message without the password,
    instead of in Dagster's start-up traceback. Does nothing for an instance without PostgreSQL storage."""
    import psycopg

    home = home or dagster_home(env)
    storage = instance_storage(home, env) if home else None
    if storage is None:
        return
    try:
        psycopg.connect(**storage.connect_kwargs(), application_name="erp-pipelines:preflight").close()
    except psycopg.OperationalError as exc:
        message = redact(str(exc)).strip()
        if storage.password:
            message = message.replace(storage.password, "***")
        raise DatabaseUnavailable(
            f"Cannot connect to Dagster's storage database: {message}",
            where=f"Dagster's storage {storage.display()} (DAGSTER_PG_URL, or DAGSTER_PG_USERNAME / "
            f"DAGSTER_PG_HOST / DAGSTER_PG_PORT / DAGSTER_PG_DB; instance {home / 'dagster.yaml'})",
            fix="Check that the server runs and is reachable and that the user, password (DAGSTER_PG_PASSWORD) "
            "and database are right; `make run` / `make dev` start the embedded one.",
        ) from None
