"""Which database `make run` may fill with demo data: the embedded one it created, or one named on purpose.

Why: `make run` loads the seed's drifted state and a million demo rows, then syncs the schema for real. The
README's own-database section exports ERP_DATABASE_URL, and a later `make run` in that shell once did all
of that to the user's database. So `make run` writes only into a database that carries the demo marker:

- `erp-pipelines` creates the embedded server's `erp` database and sets its COMMENT to
  `erp-pipelines demo ERP <token>`, where <token> is a random value kept in the state folder
  (`.erp-pipelines/demo-database-token`, beside the embedded server's data directory). A database carries
  the marker only if its comment names this checkout's token: the embedded database of another checkout,
  or a dump restored elsewhere, does not.
- `erp-pipelines run --demo-into-this-database NAME` is the explicit override: NAME must be the name of the
  database ERP_DATABASE_URL points at.

Anything else is refused before the first write (the check itself only reads), with the ways to run the
graph on that database instead.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import psycopg
from psycopg import sql

from erp_pipelines.errors import ErpPipelinesError

TOKEN_FILE = "demo-database-token"
COMMENT_PREFIX = "erp-pipelines demo ERP "
DATABASE_COMMENT = "SELECT current_database(), shobj_description(oid, 'pg_database') FROM pg_database " \
                   "WHERE datname = current_database()"


def demo_token(state_dir: Path, create: bool = False) -> str | None:
    """This checkout's demo token (created, mode 0600, when `create` and missing)."""
    path = state_dir / TOKEN_FILE
    if path.is_file():
        return path.read_text("utf-8").strip() or None
    if not create:
        return None
    state_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    path.touch(mode=0o600)
    path.write_text(token + "\n", "utf-8")
    return token


def mark_demo_database(admin_conn: psycopg.Connection, name: str, state_dir: Path) -> None:
    """COMMENT ON DATABASE `name`: the marker of the embedded database this checkout created."""
    token = demo_token(state_dir, create=True)
    admin_conn.execute(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(COMMENT_PREFIX + token))
    )


def check_demo_target(conn: psycopg.Connection, state_dir: Path, safe_url: str, named: str | None) -> None:
    """Refuse (before any write) to put the demo into a database that is not ours, unless named on purpose."""
    database, comment = conn.execute(DATABASE_COMMENT).fetchone()
    if named is not None:
        if named != database:
            raise ErpPipelinesError(
                f"--demo-into-this-database names {named!r}, but ERP_DATABASE_URL points at database "
                f"{database!r}.",
                where=f"ERP_DATABASE_URL = {safe_url}",
                fix="Name the database the URL points at, or unset ERP_DATABASE_URL for the embedded demo.",
            )
        return
    token = demo_token(state_dir)
    if token and comment == COMMENT_PREFIX + token:
        return
    raise ErpPipelinesError(
        f"`make run` builds the demo ERP (the seed's drifted schema, demo users, generated demo rows) and "
        f"runs the whole graph for real, and database {database!r} is not the embedded demo database it "
        "created, so it refused before writing anything.",
        where=f"ERP_DATABASE_URL = {safe_url} (set in your environment)",
        fix="For the demo, unset ERP_DATABASE_URL (and DAGSTER_PG_URL / DAGSTER_HOME if they name your own "
        "instance) and run `make run` again. To run the graph on this database: `make plan` (prints every "
        "statement, changes nothing), then `make dev` and launch `schema_sync_job` (first with "
        "`ops: {erp_schema: {config: {dry_run: true}}}`), or `dagster asset materialize -m "
        "erp_pipelines.definitions --select erp_schema` after `eval \"$(erp-pipelines env)\"`, with a Dagster "
        "instance of its own (docs/production.md). To load the demo into it anyway: "
        f"`erp-pipelines run --demo-into-this-database {database}`.",
    )
