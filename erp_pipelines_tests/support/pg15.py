"""Debian's PostgreSQL 15 (with contrib) as a second server for the schema suite, started once per session.

Real users run Prisma on PostgreSQL 14-17; the embedded server is 18. The Debian server refuses to run as
root, so `initdb` and `pg_ctl` run as the `postgres` user (`su postgres -c`), with a data folder of its own
in a temporary directory, listening on a free port of 127.0.0.1 only, with password authentication.
"""

from __future__ import annotations

import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

PG15_BIN = Path("/usr/lib/postgresql/15/bin")
INSTALL_HINT = (
    "PostgreSQL 15 is not installed. Install the test dependencies: `make test` does it "
    "(apt-get install postgresql-15 postgresql-contrib-15 from Debian's packages)."
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(command: list[str], timeout: int = 120) -> subprocess.CompletedProcess:
    line = " ".join(shlex.quote(c) for c in command)
    return subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", line], capture_output=True, text=True,
                          timeout=timeout, check=False)


@dataclass
class Pg15Server:
    """A running PostgreSQL 15; `get_uri(dbname)` mirrors the embedded server's helper."""

    root: Path
    port: int
    password: str

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def get_uri(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def stop(self) -> None:
        _as_postgres([str(PG15_BIN / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w"])
        shutil.rmtree(self.root, ignore_errors=True)


def start_pg15() -> Pg15Server:
    """initdb + pg_ctl start as `postgres`; fails (never skips) with the install hint when binaries are missing."""
    if not (PG15_BIN / "pg_ctl").exists() or not shutil.which("su"):
        pytest.fail(INSTALL_HINT, pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="erp-pg15-"))
    shutil.chown(root, "postgres", "postgres")
    root.chmod(0o700)
    password = secrets.token_hex(12)
    pwfile = root / "pw"
    pwfile.write_text(password + "\n")
    shutil.chown(pwfile, "postgres", "postgres")
    init = _as_postgres([str(PG15_BIN / "initdb"), "-D", str(root / "data"), "-U", "postgres", "--auth=scram-sha-256",
                         f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"])
    pwfile.unlink()
    if init.returncode != 0:
        pytest.fail(f"initdb of PostgreSQL 15 failed: {init.stderr[-2000:]}", pytrace=False)
    port = _free_port()
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off -c max_connections=60"
    started = _as_postgres([str(PG15_BIN / "pg_ctl"), "start", "-D", str(root / "data"), "-w", "-t", "60",
                            "-l", str(root / "server.log"), "-o", options])
    if started.returncode != 0:
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        pytest.fail(f"PostgreSQL 15 did not start: {started.stderr[-1000:]} {log[-2000:]}", pytrace=False)
    return Pg15Server(root=root, port=port, password=password)
