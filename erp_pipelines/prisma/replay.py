"""The wanted schema as PostgreSQL understands it: a replay of migrations in a throw-away schema.

Migrations run inside a savepoint that is always rolled back, in a fresh schema `erp_pipelines_shadow_<hex>`
first on the search_path. Statements that name the live schema (`"public"."User"`, `public.x` in foreign
keys, sequences, types, functions, triggers...) are redirected by rewriting PostgreSQL's own parse tree
(pglast): every qualified name whose schema is the live one is pointed at the throw-away schema. String
literals are never touched, except a `'schema.name'::regclass` cast, whose string is itself a name.

`CREATE EXTENSION` is database-wide: an extension already installed is skipped; one that is not is installed
inside the savepoint (so the replay can use it) and rolled back with it; one the server does not ship is a
clear error. Any failing statement is an ErpPipelinesError naming the migration, statement and line, with
PostgreSQL's message, and nothing is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import pglast
import psycopg
from pglast import ast
from pglast.stream import RawStream
from psycopg import sql

from erp_pipelines.errors import ErpPipelinesError, redact
from erp_pipelines.prisma.catalog import Catalog, inspect, set_search_path
from erp_pipelines.prisma.migrations import Migration, Statement

SHADOW_PREFIX = "erp_pipelines_shadow_"

_AVAILABLE = "SELECT name FROM pg_available_extensions WHERE name = %s"
_INSTALLED = "SELECT 1 FROM pg_extension WHERE extname = %s"


# --- rewriting qualified names in the parse tree -------------------------------------------------------------


def _is_name_list(value) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) >= 2
        and all(isinstance(v, ast.String) for v in value)
    )


class _Redirect:
    """Walks a parse tree, pointing names qualified with `live` at `shadow`; counts what it changed."""

    def __init__(self, live: str, shadow: str) -> None:
        self.live, self.shadow, self.changed = live, shadow, 0

    def _name_list(self, names: tuple) -> tuple:
        # schema.name, schema.table.column or db.schema.name: the schema is first, or second after a catalog
        if names[0].sval == self.live and len(names) in (2, 3):
            self.changed += 1
            return (ast.String(sval=self.shadow), *names[1:])
        return names

    def _regclass_literal(self, node: ast.TypeCast) -> None:
        type_names = [n.sval for n in (node.typeName.names or ()) if isinstance(n, ast.String)]
        arg = node.arg
        if type_names[-1:] != ["regclass"] or not isinstance(arg, ast.A_Const) or not isinstance(arg.val, ast.String):
            return
        quoted = '"' + self.live.replace('"', '""') + '".'
        for prefix in (quoted, self.live + "."):
            if arg.val.sval.startswith(prefix):
                rest = arg.val.sval[len(prefix) :]
                arg.val = ast.String(sval='"' + self.shadow + '".' + rest)
                self.changed += 1
                return

    def visit(self, node) -> None:
        if isinstance(node, (list, tuple)):
            for item in node:
                self.visit(item)
            return
        if not isinstance(node, ast.Node):
            return
        if isinstance(node, ast.RangeVar) and node.schemaname == self.live:
            node.schemaname = self.shadow
            self.changed += 1
        if isinstance(node, ast.TypeCast) and node.typeName is not None:
            self._regclass_literal(node)
        if isinstance(node, ast.CreateSchemaStmt) and node.schemaname == self.live:
            node.schemaname = self.shadow
            self.changed += 1
        if isinstance(node, ast.CreateExtensionStmt):
            for opt in node.options or ():
                if opt.defname == "schema" and isinstance(opt.arg, ast.String) and opt.arg.sval == self.live:
                    opt.arg = ast.String(sval=self.shadow)
                    self.changed += 1
        if isinstance(node, ast.VariableSetStmt) and (node.name or "").lower() == "search_path":
            for arg in node.args or ():
                if isinstance(arg, ast.A_Const) and isinstance(arg.val, ast.String) and arg.val.sval == self.live:
                    arg.val = ast.String(sval=self.shadow)
                    self.changed += 1
        for slot in node.__slots__:
            value = getattr(node, slot)
            if _is_name_list(value):
                setattr(node, slot, self._name_list(value))
            elif isinstance(value, tuple) and value and all(_is_name_list(v) for v in value):
                setattr(node, slot, tuple(self._name_list(v) for v in value))
            else:
                self.visit(value)


def redirect_schema(text: str, live: str, shadow: str) -> str:
    """`text` (one statement) with every name qualified by `live` pointing at `shadow` instead.

    The statement is returned unchanged (same text) when it names nothing in `live`, so the deparser only
    sees statements that need it.
    """
    tree = pglast.parse_sql(text)
    walker = _Redirect(live, shadow)
    walker.visit(tree)
    if not walker.changed:
        return text
    return ";\n".join(RawStream()(raw) for raw in tree)


def _parsed(text: str):
    try:
        tree = pglast.parse_sql(text)
    except pglast.parser.ParseError:
        return None
    return tree[0] if len(tree) == 1 else None


def extension_name(text: str) -> tuple[str, bool] | None:
    """(name, if_not_exists) when `text` is a CREATE EXTENSION statement."""
    try:
        tree = pglast.parse_sql(text)
    except pglast.parser.ParseError:
        return None
    if len(tree) == 1 and isinstance(tree[0].stmt, ast.CreateExtensionStmt):
        return tree[0].stmt.extname, bool(tree[0].stmt.if_not_exists)
    return None


# --- running the replay -------------------------------------------------------------------------------------


@dataclass
class Replayed:
    catalog: Catalog
    extensions: set[str] = field(default_factory=set)


def _statements(migration: Migration) -> Iterable[Statement]:
    """What a replay runs: transaction control skipped (the replay is one savepoint)."""
    for stmt in migration.statements:
        if stmt.is_transaction_control:
            continue
        yield stmt


def _text(stmt: Statement) -> str:
    """Non-transactional statements (CREATE INDEX CONCURRENTLY) in their transactional form."""
    return stmt.transactional_text or stmt.text


def _fail(migration: Migration, stmt: Statement, message: str, fix: str) -> ErpPipelinesError:
    return ErpPipelinesError(
        f"Migration {migration.name} fails when replayed into a throw-away schema at statement {stmt.number}: "
        f"{redact(message)}. Nothing was written.",
        where=f"{migration.path}, line {stmt.line}: {stmt.preview()}",
        fix=fix,
    )


def _replay_extension(conn: psycopg.Connection, migration: Migration, stmt: Statement, name: str, text: str) -> None:
    if conn.execute(_INSTALLED, (name,)).fetchone():
        return
    if not conn.execute(_AVAILABLE, (name,)).fetchone():
        raise _fail(
            migration,
            stmt,
            f'extension "{name}" is not available on this PostgreSQL server (not in pg_available_extensions)',
            f"Install the package that ships {name} on the database server (for Debian/Ubuntu: "
            "postgresql-contrib for pgcrypto, pg_trgm, citext), or use a server that has it, then run again.",
        )
    conn.execute(text)


def replay(
    conn: psycopg.Connection, migrations: Sequence[Migration], live_schema: str
) -> Replayed:
    """Run `migrations` in a throw-away schema inside a rolled-back savepoint and snapshot that schema.

    Must run inside a transaction. The returned catalog is named after `live_schema` so it compares with
    `inspect(conn, live_schema)` directly.
    """
    shadow = f"{SHADOW_PREFIX}{uuid.uuid4().hex[:10]}"
    for migration in migrations:
        migration.statements  # noqa: B018 - parse errors surface here, before anything runs
    extensions: set[str] = set()
    catalog: Catalog | None = None
    try:
        with conn.transaction() as savepoint:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(shadow)))
            set_search_path(conn, shadow, live_schema)
            for migration in migrations:
                for stmt in _statements(migration):
                    text = _text(stmt)
                    try:
                        rewritten = redirect_schema(text, live_schema, shadow)
                        ext = extension_name(text)
                        if ext:
                            extensions.add(ext[0])
                            _replay_extension(conn, migration, stmt, ext[0], rewritten)
                            continue
                        conn.execute(rewritten)
                        if isinstance(getattr(_parsed(text), "stmt", None), ast.VariableSetStmt):
                            set_search_path(conn, shadow, live_schema)  # a migration's SET search_path
                    except psycopg.Error as exc:
                        raise _fail(
                            migration,
                            stmt,
                            exc.diag.message_primary or str(exc),
                            "The wanted schema is the replay of the history on an empty schema, and this "
                            "migration does not replay there. If it is not applied yet, correct it; if it is "
                            "applied (do not edit it), point replay_from / baseline_migration at a range that "
                            "replays, such as a squashed baseline made after it.",
                        ) from None
            catalog = inspect(conn, shadow, search_path=(shadow, live_schema))
            raise psycopg.Rollback(savepoint)
    finally:
        set_search_path(conn, live_schema)
    assert catalog is not None
    catalog.schema = live_schema
    catalog.extensions = set(extensions)
    # pg_get_functiondef always qualifies the function's name: point it back at the live schema.
    catalog.functions = {
        key: replace(fn, definition=redirect_schema(fn.definition, shadow, live_schema))
        for key, fn in catalog.functions.items()
    }
    return Replayed(catalog, extensions)


def missing_tables_and_columns(
    conn: psycopg.Connection,
    migrations: Sequence[Migration],
    schema: str,
    extra: dict[str, dict[str, str]] | None = None,
) -> list[str]:
    """Tables and columns the replayed migrations create (plus `extra`: table -> column -> type) that the
    live schema lacks. Read-only: the replay runs in a throw-away schema that is rolled back."""
    with conn.transaction() as tx:
        wanted = replay(conn, migrations, schema).catalog
        live = inspect(conn, schema)
        raise psycopg.Rollback(tx)
    missing = []
    expected = {t: {c: col.type for c, col in table.columns.items()} for t, table in wanted.tables.items()}
    expected.update(extra or {})
    for table, columns in sorted(expected.items()):
        if table not in live.tables:
            missing.append(f"table {table}")
            continue
        have = live.tables[table].columns
        missing += [f"column {table}.{c}" for c in columns if c not in have]
    missing += [f"extension {e}" for e in sorted(wanted.extensions - live.extensions)]
    return missing
