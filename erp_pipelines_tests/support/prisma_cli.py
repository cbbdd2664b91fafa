"""The real Prisma CLI as the judge of `_prisma_migrations`: `prisma migrate status` against a test database.

Prisma 6.19 ships a WebAssembly schema engine that runs offline with the `pg` driver adapter (Prisma 7 needs
a binary download); see shared/prisma-cli/README.md. It is installed once with npm into the git-ignored
`.erp-pipelines/prisma-cli/` (guarded by a file lock, so parallel sessions install it once) and run with
`node` directly. Messages never show a password: the URL goes to the CLI through its environment only.

The adapter's pool is made with `allowExitOnIdle` (node-postgres' Pool option): without it, a `migrate status`
that ends normally ("up to date") keeps node alive until the pool's idle connection times out (10 s by
default), which made every passing judge call ~11 s instead of ~1 s. The judgment itself is unchanged.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from erp_pipelines.errors import redact

PRISMA_VERSION = "6.19.3"
PACKAGES = (f"prisma@{PRISMA_VERSION}", "@prisma/adapter-pg@7.10.1", "pg@8")
CLI_DIR = Path(__file__).resolve().parents[2] / ".erp-pipelines" / "prisma-cli"
UP_TO_DATE = "Database schema is up to date!"
INSTALL_HINT = "Install the test dependencies (make test installs node and npm from Debian's packages)."

PRISMA_CONFIG = """\
import { defineConfig } from "prisma/config";
import { PrismaPg } from "@prisma/adapter-pg";

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: "prisma/schema.prisma",
  migrations: { path: process.env.MIGRATIONS_DIR as string },
  adapter: async () => new PrismaPg({
    connectionString: process.env.DATABASE_URL as string,
    allowExitOnIdle: true,
  }),
});
"""
SCHEMA_PRISMA = """\
generator client {
  provider   = "prisma-client-js"
  engineType = "client"
}

datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}
"""


def _cli_entry() -> Path:
    return CLI_DIR / "node_modules" / "prisma" / "build" / "index.js"


def ensure_prisma_cli() -> Path:
    """Install Prisma's CLI into the cache folder once; return the folder holding prisma.config.ts."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(f"node/npm are missing, the Prisma CLI cannot run. {INSTALL_HINT}", pytrace=False)
    CLI_DIR.mkdir(parents=True, exist_ok=True)
    with open(CLI_DIR.parent / "prisma-cli.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = CLI_DIR / ".installed"
        if not stamp.exists() or stamp.read_text() != " ".join(PACKAGES):
            (CLI_DIR / "package.json").write_text('{"name": "erp-pipelines-prisma-judge", "private": true}\n')
            done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error", *PACKAGES],
                                  cwd=CLI_DIR, capture_output=True, text=True, timeout=600, check=False)
            if done.returncode != 0:
                pytest.fail(f"npm could not install the Prisma CLI: {done.stderr[-2000:]}", pytrace=False)
            stamp.write_text(" ".join(PACKAGES))
        (CLI_DIR / "prisma").mkdir(exist_ok=True)
        (CLI_DIR / "prisma.config.ts").write_text(PRISMA_CONFIG)
        (CLI_DIR / "prisma" / "schema.prisma").write_text(SCHEMA_PRISMA)
    return CLI_DIR


def split_schema(database_url: str, schema: str | None = None) -> tuple[str, str | None]:
    """The URL without Prisma's `?schema=` (node-postgres would send it to the server) and the schema."""
    parts = urlsplit(database_url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    in_url = [v for k, v in query if k == "schema"]
    kept = [(k, v) for k, v in query if k != "schema"]
    return urlunsplit(parts._replace(query=urlencode(kept))), schema or (in_url[-1] if in_url else None)


def _with_search_path(url: str, schema: str | None) -> str:
    """Prisma's JS schema engine reads `_prisma_migrations` unqualified: point the session's search_path at the
    schema (libpq's `options=-c search_path=...`, which node-postgres passes to the server)."""
    if not schema or schema == "public":
        return url
    parts = urlsplit(url)
    quoted = '"' + schema.replace('"', '""') + '"'
    escaped = quoted.replace("\\", "\\\\").replace(" ", "\\ ")  # the server splits `options` on blanks
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("options", f"-c search_path={escaped}")]
    return urlunsplit(parts._replace(query=urlencode(query)))


def run_prisma(args: list[str], database_url: str, migrations_dir: Path, schema: str | None = None,
               timeout: int = 180) -> tuple[int, str]:
    """Run `prisma <args>`; returns (exit code, stdout + stderr) with any password removed."""
    folder = ensure_prisma_cli()
    url, schema = split_schema(database_url, schema)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRISMA_", "DATABASE_"))}
    env.update(DATABASE_URL=_with_search_path(url, schema), MIGRATIONS_DIR=str(Path(migrations_dir).resolve()),
               PRISMA_HIDE_UPDATE_MESSAGE="1", CHECKPOINT_DISABLE="1", NO_COLOR="1", CI="1")
    done = subprocess.run(["node", str(_cli_entry()), *args], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    password = urlsplit(url).password
    output = done.stdout + done.stderr
    if password:
        output = output.replace(password, "***")
    return done.returncode, redact(output)


def migrate_status(database_url: str, migrations_dir: Path, schema: str | None = None) -> tuple[int, str]:
    """`prisma migrate status`: exit code 0 and "Database schema is up to date!" when nothing is pending."""
    return run_prisma(["migrate", "status"], database_url, migrations_dir, schema)


def assert_prisma_up_to_date(database_url: str, migrations_dir: Path, schema: str | None = None) -> str:
    code, output = migrate_status(database_url, migrations_dir, schema)
    assert code == 0 and UP_TO_DATE in output, f"prisma migrate status (exit {code}):\n{output}"
    return output


def assert_prisma_reports_failed(database_url: str, migrations_dir: Path, migration: str,
                                 schema: str | None = None) -> str:
    """Prisma sees `migration` as failed (its row unfinished, not rolled back): status exits non-zero naming it."""
    code, output = migrate_status(database_url, migrations_dir, schema)
    assert code != 0 and migration in output and "failed" in output.lower(), (
        f"prisma migrate status (exit {code}):\n{output}")
    return output
