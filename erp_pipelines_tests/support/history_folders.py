"""Small Prisma migrations folders written by the history tests, and a real Dagster run of the history step."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import psycopg
from psycopg import sql

from erp_pipelines.resources import ErpDatabase, PrismaMigrationsFolder
from erp_pipelines.schema.assets import erp_schema, prisma_migration_history

BASELINE = "20251201_0000_baseline_init"
BASELINE_SQL = """-- CreateTable
CREATE TABLE "User" (
    "id" SERIAL NOT NULL,
    "email" TEXT NOT NULL,
    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Post" (
    "id" SERIAL NOT NULL,
    "title" TEXT NOT NULL,
    "authorId" INTEGER NOT NULL,
    CONSTRAINT "Post_pkey" PRIMARY KEY ("id")
);

-- AddForeignKey
ALTER TABLE "Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId") REFERENCES "User"("id");
"""
ROWS_OF = """
SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count
FROM {table} WHERE migration_name = %s ORDER BY started_at
"""


def write_folder(root: Path, migrations: dict[str, str | bytes]) -> Path:
    """A migrations folder holding `migrations` (name -> migration.sql), with Prisma's lock file."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "migration_lock.toml").write_text('provider = "postgresql"\n')
    for name, script in migrations.items():
        (root / name).mkdir(exist_ok=True)
        data = script.encode() if isinstance(script, str) else script
        (root / name / "migration.sql").write_bytes(data)
    return root


def create_baseline_tables(conn: psycopg.Connection, schema: str = "public") -> None:
    """The baseline's tables, as the schema sync (or the ERP's history) left them."""
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL search_path = {}").format(sql.Identifier(schema)))
        conn.execute(BASELINE_SQL)


def run_history(db: ErpDatabase, folder: Path, **config) -> dg.ExecuteInProcessResult:
    """Materialize `prisma_migration_history` alone (real Dagster), never raising on a failed step or check."""
    return dg.materialize(
        [prisma_migration_history],
        resources={"erp_db": db, "migrations": PrismaMigrationsFolder(path=str(folder))},
        run_config={"ops": {"prisma_migration_history": {"config": config}}} if config else None,
        raise_on_error=False,
    )


def run_sync_and_history(db: ErpDatabase, folder: Path) -> dg.ExecuteInProcessResult:
    """The schema sync then the history step (real Dagster), as `schema_sync_job` runs them."""
    return dg.materialize([erp_schema, prisma_migration_history],
                          resources={"erp_db": db, "migrations": PrismaMigrationsFolder(path=str(folder))})


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def history_rows(conn: psycopg.Connection, name: str, schema: str = "public") -> list[tuple]:
    query = sql.SQL(ROWS_OF).format(table=sql.Identifier(schema, "_prisma_migrations"))
    return conn.execute(query, (name,)).fetchall()


def row_shape(row: tuple) -> dict:
    """What Prisma's tools compare of a row (not its id or exact times)."""
    _, checksum, finished_at, name, logs, rolled_back_at, started_at, steps = row
    return {
        "name": name,
        "checksum": checksum,
        "finished": finished_at is not None,
        "rolled_back": rolled_back_at is not None,
        "logs": logs if not logs else "(text)",
        "started_equals_finished": started_at == finished_at,
        "applied_steps_count": steps,
    }


def with_schema(url: str, schema: str) -> str:
    """A Prisma-style DATABASE_URL: `url` with `?schema=NAME` (URL-encoded) added."""
    from urllib.parse import quote

    return url + ("&" if "?" in url else "?") + "schema=" + quote(schema)


class LockProbingDatabase:
    """A `Connector` around an `ErpDatabase` that, whenever the history step opens a connection, checks from a
    separate session whether Prisma's advisory lock is free at that moment, and records (purpose, free)."""

    def __init__(self, db: ErpDatabase, probe_url: str) -> None:
        self.db = db
        self.db_schema = db.db_schema
        self.lock_timeout_ms = db.lock_timeout_ms
        self.probe_url = probe_url
        self.probes: list[tuple[str, bool]] = []

    def safe_url(self) -> str:
        return self.db.safe_url()

    def lock_is_free(self) -> bool:
        with psycopg.connect(self.probe_url, autocommit=True) as probe:
            free = probe.execute("SELECT pg_try_advisory_lock(72707369)").fetchone()[0]
            if free:
                probe.execute("SELECT pg_advisory_unlock(72707369)")
            return free

    def connect(self, purpose: str = "", autocommit: bool = False):
        self.probes.append((purpose, self.lock_is_free()))
        return self.db.connect(purpose, autocommit)
