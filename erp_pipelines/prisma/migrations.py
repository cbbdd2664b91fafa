"""Reading a Prisma `migrations/` folder: which migrations exist, their SQL, statements and checksums.

Prisma's rules: every sub-folder holding `migration.sql` is a migration, applied in name order; loose files
are ignored; `migration_lock.toml` names the provider; the checksum Prisma records is the lowercase hex
SHA-256 of the file's bytes. Anything we cannot read safely is an `ErpPipelinesError` naming the file.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pglast
from pglast.parser import ParseError

from erp_pipelines.errors import ErpPipelinesError

MAX_MIGRATION_BYTES = 32 * 1024 * 1024
MAX_MIGRATION_NAME = 255  # _prisma_migrations.migration_name is varchar(255)
_FORBIDDEN_STATEMENTS = {
    "TransactionStmt": "transaction control (BEGIN/COMMIT/ROLLBACK)",
    "VacuumStmt": "VACUUM",
    "CreatedbStmt": "CREATE DATABASE",
    "DropdbStmt": "DROP DATABASE",
}


@dataclass(frozen=True)
class Statement:
    """One SQL statement of a migration, with the line it starts on (1-based) for error messages."""

    number: int
    line: int
    text: str

    def preview(self, width: int = 160) -> str:
        one_line = re.sub(r"\s+", " ", self.text).strip()
        return one_line if len(one_line) <= width else one_line[: width - 3] + "..."


@dataclass(frozen=True)
class Migration:
    name: str
    path: Path
    raw: bytes = field(repr=False)

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @cached_property
    def sql(self) -> str:
        try:
            return self.raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ErpPipelinesError(
                f"Migration file is not valid UTF-8 (byte {exc.start}).",
                where=str(self.path),
                fix="Save the migration as UTF-8, as Prisma writes it.",
            ) from None

    @cached_property
    def statements(self) -> list[Statement]:
        """The file split into statements by PostgreSQL's own parser (libpg_query through pglast)."""
        text = self.sql
        try:
            slices = pglast.split(text, only_slices=True)
        except ParseError as exc:
            # libpg_query gives no position for "at end of input": the problem is then at the file's end.
            position = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else len(text.rstrip())
            line = text.count("\n", 0, position) + 1
            lines = text.splitlines()
            snippet = lines[line - 1].strip() if 0 < line <= len(lines) else ""
            raise ErpPipelinesError(
                f"Migration {self.name} is not valid PostgreSQL: {exc.args[0]}.",
                where=f"{self.path}, line {line}: {snippet[:160]}",
                fix="Correct the SQL; every migration must parse before anything is applied.",
            ) from None
        statements = []
        for number, sl in enumerate(slices, start=1):
            stmt_text = text[sl]
            stmt = Statement(number=number, line=text.count("\n", 0, sl.start) + 1, text=stmt_text)
            kind = type(pglast.parse_sql(stmt_text)[0].stmt).__name__
            if kind in _FORBIDDEN_STATEMENTS:
                raise ErpPipelinesError(
                    f"Migration {self.name} contains {_FORBIDDEN_STATEMENTS[kind]}, which cannot run inside "
                    "the single transaction every change is applied in.",
                    where=f"{self.path}, statement {number} (line {stmt.line}): {stmt.preview()}",
                    fix="Remove the statement; the pipeline wraps each migration in its own transaction.",
                )
            statements.append(stmt)
        return statements


@dataclass(frozen=True)
class MigrationsFolder:
    path: Path
    migrations: tuple[Migration, ...]

    def names(self) -> list[str]:
        return [m.name for m in self.migrations]

    def get(self, name: str) -> Migration:
        for m in self.migrations:
            if m.name == name:
                return m
        raise ErpPipelinesError(
            f"There is no migration named {name!r}.",
            where=f"migrations folder {self.path}",
            fix=f"Use one of: {', '.join(self.names()) or '(the folder holds no migrations)'}.",
        )

    def up_to(self, name: str) -> list[Migration]:
        """The migrations up to and including `name` (e.g. the baseline), in order."""
        self.get(name)
        return [m for m in self.migrations if m.name <= name]

    def after(self, name: str) -> list[Migration]:
        self.get(name)
        return [m for m in self.migrations if m.name > name]


def _check_inside(root: Path, candidate: Path, what: str) -> Path:
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root):
        raise ErpPipelinesError(
            f"{what} is a symbolic link pointing outside the migrations folder (to {resolved}).",
            where=str(candidate),
            fix="Copy the file into the folder instead of linking to it.",
        )
    return resolved


def read_migrations_folder(path: Path | str) -> MigrationsFolder:
    """Read and validate a migrations folder; every problem raises ErpPipelinesError naming the file."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ErpPipelinesError(
            "The Prisma migrations folder does not exist or is not a folder.",
            where=f"PRISMA_MIGRATIONS_DIR = {folder}",
            fix="Point PRISMA_MIGRATIONS_DIR at your project's prisma/migrations folder.",
        )
    root = folder.resolve()
    lock = folder / "migration_lock.toml"
    if lock.exists():
        _check_inside(root, lock, "migration_lock.toml")
        try:
            provider = tomllib.loads(lock.read_text("utf-8")).get("provider")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ErpPipelinesError(
                f"migration_lock.toml cannot be read: {exc}.",
                where=str(lock),
                fix='It should hold one line: provider = "postgresql".',
            ) from None
        if provider != "postgresql":
            raise ErpPipelinesError(
                f"The migrations were written for provider {provider!r}, not PostgreSQL.",
                where=str(lock),
                fix='Use a migrations folder generated with provider = "postgresql" in schema.prisma.',
            )
    migrations = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if not entry.is_dir():
            continue  # loose files are ignored, as Prisma ignores them
        _check_inside(root, entry, f"Migration folder {entry.name}")
        if len(entry.name.encode("utf-8")) > MAX_MIGRATION_NAME:
            raise ErpPipelinesError(
                "A migration folder name is longer than the 255 bytes _prisma_migrations can hold.",
                where=str(entry),
                fix="Rename the folder.",
            )
        sql_file = entry / "migration.sql"
        if not sql_file.is_file():
            raise ErpPipelinesError(
                f"Migration folder {entry.name} has no migration.sql.",
                where=str(entry),
                fix="Add the migration.sql Prisma generated, or remove the folder if it is not a migration.",
            )
        _check_inside(root, sql_file, f"migration.sql of {entry.name}")
        size = sql_file.stat().st_size
        if size > MAX_MIGRATION_BYTES:
            raise ErpPipelinesError(
                f"Migration {entry.name} is {size} bytes, over the {MAX_MIGRATION_BYTES}-byte limit.",
                where=str(sql_file),
                fix="Split the migration; data loads do not belong in schema migrations.",
            )
        migrations.append(Migration(name=entry.name, path=sql_file, raw=sql_file.read_bytes()))
    return MigrationsFolder(path=folder, migrations=tuple(migrations))
