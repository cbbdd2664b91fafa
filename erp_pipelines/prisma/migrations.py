"""Reading a Prisma `migrations/` folder: which migrations exist, their SQL, statements and checksums.

Prisma's rules: every sub-folder holding `migration.sql` is a migration, applied in the order of
`localeCompare` on the folder names (see `order.py`); loose files are ignored; `migration_lock.toml` names
the provider; the checksum Prisma records is the lowercase hex SHA-256 of the file's bytes. Each script is
classified by how PostgreSQL runs it when sent whole as one simple query, as Prisma sends it
(`ScriptKind`). Anything we cannot read safely is an `ErpPipelinesError` naming the file.
"""

from __future__ import annotations

import difflib
import enum
import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pglast
from pglast import ast
from pglast.enums import ReindexObjectType
from pglast.parser import ParseError
from pglast.stream import RawStream

from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.prisma.order import collation_key

MAX_MIGRATION_BYTES = 32 * 1024 * 1024
MAX_MIGRATION_NAME = 255  # _prisma_migrations.migration_name is varchar(255)
CLOSEST_NAMES = 3  # a wrong name (e.g. baseline_migration) is answered with this many similar ones, not all
# Statements PostgreSQL refuses inside a transaction block (its PreventInTransactionBlock callers).
_ALWAYS_NON_TRANSACTIONAL = {
    "CreatedbStmt": "CREATE DATABASE",
    "DropdbStmt": "DROP DATABASE",
    "AlterSystemStmt": "ALTER SYSTEM",
    "CreateTableSpaceStmt": "CREATE TABLESPACE",
    "DropTableSpaceStmt": "DROP TABLESPACE",
    "CreateSubscriptionStmt": "CREATE SUBSCRIPTION",
    "DropSubscriptionStmt": "DROP SUBSCRIPTION",
}
_NOT_REPLAYED = "-- {what}: no effect on the schema, not replayed when planning"


class ScriptKind(enum.Enum):
    """How PostgreSQL runs a migration script sent as one simple query, as `prisma migrate deploy` sends it."""

    IMPLICIT_TRANSACTION = "implicit transaction"  # several statements, no transaction control: all or nothing
    SINGLE_STATEMENT = "single statement"  # one transactional statement (or none)
    NON_TRANSACTIONAL = "non-transactional statement"  # a lone CREATE INDEX CONCURRENTLY, VACUUM, ...
    EXPLICIT_TRANSACTION = "explicit transaction control"  # BEGIN/COMMIT/ROLLBACK in the script
    UNRUNNABLE = "non-transactional statement in a multi-statement script"  # PostgreSQL rejects it

    @property
    def atomic_with_history(self) -> bool:
        """True when the script and its `_prisma_migrations` row can commit in one transaction of ours."""
        return self in (ScriptKind.IMPLICIT_TRANSACTION, ScriptKind.SINGLE_STATEMENT)


@dataclass(frozen=True)
class Statement:
    """One SQL statement of a migration, with the line it starts on (1-based) for error messages.

    `node_type` is pglast's node name (`IndexStmt`, `TransactionStmt`, ...). `non_transactional` statements
    cannot run inside a transaction block; `transactional_text` is the statement in a form that can (for
    planning: CONCURRENTLY removed, or a comment for statements without effect on the schema).
    Transaction-control statements are skipped by a replay.
    """

    number: int
    line: int
    text: str
    node_type: str = ""
    is_transaction_control: bool = False
    non_transactional: bool = False
    transactional_text: str = ""

    def preview(self, width: int = 160) -> str:
        one_line = re.sub(r"\s+", " ", self.text).strip()
        return one_line if len(one_line) <= width else one_line[: width - 3] + "..."


def _non_transactional_what(node: ast.Node) -> str | None:
    """What makes this statement refuse a transaction block, or None when it runs in one."""
    kind = type(node).__name__
    if kind in _ALWAYS_NON_TRANSACTIONAL:
        return _ALWAYS_NON_TRANSACTIONAL[kind]
    if isinstance(node, ast.IndexStmt) and node.concurrent:
        return "CREATE INDEX CONCURRENTLY"
    if isinstance(node, ast.DropStmt) and node.concurrent:
        return "DROP INDEX CONCURRENTLY"
    if isinstance(node, ast.ReindexStmt):
        if any(p.defname == "concurrently" for p in node.params or ()):
            return "REINDEX CONCURRENTLY"
        if node.kind in (ReindexObjectType.REINDEX_OBJECT_DATABASE, ReindexObjectType.REINDEX_OBJECT_SYSTEM):
            return "REINDEX DATABASE/SYSTEM"
    if isinstance(node, ast.VacuumStmt) and node.is_vacuumcmd:
        return "VACUUM"
    if isinstance(node, ast.ClusterStmt) and node.relation is None:
        return "CLUSTER of every table"
    if isinstance(node, ast.AlterDatabaseStmt) and any(o.defname == "tablespace" for o in node.options or ()):
        return "ALTER DATABASE SET TABLESPACE"
    if isinstance(node, ast.AlterTableStmt):
        for cmd in node.cmds or ():
            if isinstance(cmd.def_, ast.PartitionCmd) and cmd.def_.concurrent:
                return "DETACH PARTITION CONCURRENTLY"
    return None


def _transactional_form(node: ast.Node, what: str) -> str:
    """The statement rewritten (by pglast) so it can run inside a transaction, for planning."""
    if isinstance(node, ast.IndexStmt | ast.DropStmt):
        node.concurrent = False
    elif isinstance(node, ast.ReindexStmt) and what == "REINDEX CONCURRENTLY":
        node.params = tuple(p for p in node.params if p.defname != "concurrently") or None
    elif isinstance(node, ast.AlterTableStmt) and what == "DETACH PARTITION CONCURRENTLY":
        for cmd in node.cmds:
            if isinstance(cmd.def_, ast.PartitionCmd):
                cmd.def_.concurrent = False
    else:
        return _NOT_REPLAYED.format(what=what)
    return RawStream()(node)


def _statement(number: int, line: int, text: str) -> Statement:
    node = pglast.parse_sql(text)[0].stmt
    what = _non_transactional_what(node)
    return Statement(
        number=number,
        line=line,
        text=text,
        node_type=type(node).__name__,
        is_transaction_control=isinstance(node, ast.TransactionStmt),
        non_transactional=what is not None,
        transactional_text=text if what is None else _transactional_form(node, what),
    )


@dataclass(frozen=True)
class Migration:
    name: str
    path: Path
    raw: bytes = field(repr=False)

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @cached_property
    def accepted_checksums(self) -> frozenset[str]:
        """Checksums Prisma accepts for this file: its bytes, and its bytes with CRLF and LF line ends
        swapped (a checkout on another OS), so only a real edit counts as a change."""
        lf = self.raw.replace(b"\r\n", b"\n")
        crlf = lf.replace(b"\n", b"\r\n")
        return frozenset(hashlib.sha256(b).hexdigest() for b in (self.raw, lf, crlf))

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
        return [
            _statement(number, text.count("\n", 0, sl.start) + 1, text[sl])
            for number, sl in enumerate(slices, start=1)
        ]

    @cached_property
    def kind(self) -> ScriptKind:
        """How the script runs when sent whole, as one simple query (what Prisma does)."""
        statements = self.statements
        if len(statements) > 1 and any(s.non_transactional for s in statements):
            return ScriptKind.UNRUNNABLE
        if any(s.is_transaction_control for s in statements):
            return ScriptKind.EXPLICIT_TRANSACTION
        if len(statements) == 1 and statements[0].non_transactional:
            return ScriptKind.NON_TRANSACTIONAL
        return ScriptKind.SINGLE_STATEMENT if len(statements) <= 1 else ScriptKind.IMPLICIT_TRANSACTION

    def unrunnable_error(self) -> ErpPipelinesError | None:
        """Why PostgreSQL (and so Prisma) cannot run this script, or None when it can."""
        if self.kind is not ScriptKind.UNRUNNABLE:
            return None
        stmt = next(s for s in self.statements if s.non_transactional)
        return ErpPipelinesError(
            f"Migration {self.name} has {len(self.statements)} statements, one of which "
            f"({stmt.preview(60)}) cannot run inside a transaction block; PostgreSQL runs a multi-statement "
            "script as one transaction and rejects it, so neither Prisma nor this pipeline can apply it.",
            where=f"{self.path}, statement {stmt.number} (line {stmt.line}): {stmt.preview()}",
            fix="If this migration is not applied anywhere yet, move that statement into a migration folder of "
            "its own (Prisma runs a one-statement script outside a transaction). If it was applied by hand, "
            f"record it with run config mark_applied: [{self.name}].",
        )


@dataclass(frozen=True)
class MigrationsFolder:
    """A migrations folder; `migrations` are in Prisma's order (`localeCompare` of the folder names)."""

    path: Path
    migrations: tuple[Migration, ...]

    def names(self) -> list[str]:
        return [m.name for m in self.migrations]

    def get(self, name: str) -> Migration:
        for m in self.migrations:
            if m.name == name:
                return m
        names = self.names()
        closest = difflib.get_close_matches(name, names, n=CLOSEST_NAMES, cutoff=0.3)
        raise ErpPipelinesError(
            f"There is no migration named {name!r} among the folder's {len(names)} migrations.",
            where=f"migrations folder {self.path}",
            fix=(f"Closest names: {', '.join(closest)}. " if closest else "")
            + ("Use the name of one of its sub-folders (its first is "
               f"{names[0]}, its last {names[-1]})." if names else "The folder holds no migrations."),
        )

    def position(self, name: str) -> int:
        self.get(name)
        return self.names().index(name)

    def up_to(self, name: str) -> list[Migration]:
        """The migrations up to and including `name` (e.g. the baseline), in Prisma's order."""
        return list(self.migrations[: self.position(name) + 1])

    def after(self, name: str) -> list[Migration]:
        """The migrations Prisma applies after `name`."""
        return list(self.migrations[self.position(name) + 1 :])

    def between(self, first: str, last: str) -> list[Migration]:
        """`first` through `last`, both included, in Prisma's order (empty if `first` comes after `last`)."""
        return list(self.migrations[self.position(first) : self.position(last) + 1])


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
    for entry in sorted(folder.iterdir(), key=lambda p: collation_key(p.name)):
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
