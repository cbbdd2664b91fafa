"""The wanted schema as PostgreSQL understands it: a replay of migrations in throw-away schemas.

Migrations run inside a transaction that is always rolled back. Every schema the history names gets its own
throw-away schema (`erp_pipelines_shadow_<hex>` for the live one, `..._<n>` for the others), created where the
history creates it: statements are redirected by rewriting PostgreSQL's own parse tree (pglast), so every
qualified name, `CREATE SCHEMA`, `SET search_path` value and `'schema.name'::regclass` string points at a
throw-away schema. Only system schemas and schemas holding installed extensions are left as they are. The
replay's search_path holds the throw-away schemas and the installed extensions' schemas, never a live schema
(except one that itself holds an installed extension, which must stay reachable: unqualified names of its
live relations are then qualified with the throw-away schema). DO bodies, function bodies and EXECUTE
literals are redirected too; dynamic SQL naming a live schema does not replay. How: `redirect.py`.

Transaction control is the replay's own (it is one transaction): `BEGIN`/`COMMIT` are skipped, `SET
TRANSACTION` / `SET SESSION CHARACTERISTICS` have no effect on structure and are skipped, `SET LOCAL` lasts to
the end of its migration (or its COMMIT) as it does in the script's own transaction, `SET` and `RESET` run as
written. Enum types follow their identity through renames (`enum_history`): each is created with a slot for
every value it will carry, an `ADD VALUE` renames a placeholder slot, `RENAME VALUE` runs as written.

Besides the live schema's catalog, the replay returns the catalogs of the other schemas the history creates
(`Replayed.other_schemas`), which the sync plans by the same add-only rules.

A migration the operator recorded as applied (`trusted`) that fails is reported as not verifiable, with
PostgreSQL's reason, instead of failing the replay: the replay starts again without it (no savepoints).

`CREATE EXTENSION` is database-wide: an extension already installed is skipped; one that is not is installed
inside the rolled-back transaction (so the replay can use it) and rolled back with it; one the server does not
ship is a clear error. Any failing statement of a migration that is not trusted is an ErpPipelinesError naming
the migration, statement and line, with PostgreSQL's message, and nothing is written.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace

import pglast
import psycopg
from pglast import ast, enums
from psycopg import sql

from erp_pipelines import settings
from erp_pipelines.errors import ErpPipelinesError, redact
from erp_pipelines.prisma.catalog import Catalog, inspect, set_search_path
from erp_pipelines.prisma.enum_history import EnumHistory
from erp_pipelines.prisma.migrations import Migration, Statement
from erp_pipelines.prisma.redirect import (
    SHADOW_PREFIX,
    SchemaMap,
    Unredirectable,
    redirect_names,
    relation_guard,
)
from erp_pipelines.prisma.shadow import in_shadow_database

_AVAILABLE = "SELECT name FROM pg_available_extensions WHERE name = %s"
_INSTALLED = "SELECT 1 FROM pg_extension WHERE extname = %s"
_SCHEMAS = "SELECT nspname::text FROM pg_namespace"
_EXTENSION_SCHEMAS = """
SELECT DISTINCT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
"""


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


# --- enum values: every label a type will carry, where the history creates it --------------------------------


def enum_history(migrations: Sequence[Migration]) -> EnumHistory:
    """The history's enum types followed through renames and drops (keys: (migration index, statement number))."""
    history = EnumHistory()
    for index, migration in enumerate(migrations):
        for stmt in _statements(migration):
            history.feed((index, stmt.number), _text(stmt), stmt.node_type)
    return history


def merged_enum_labels(migrations: Sequence[Migration]) -> dict[str, list[str]]:
    """Enum type name -> its labels once every statement of the history is applied, for the types the history
    creates itself (followed through `RENAME TO`, `RENAME VALUE` and `DROP TYPE`)."""
    return enum_history(migrations).final_labels()


# --- session and transaction statements ---------------------------------------------------------------------

_TRANSACTION_SETTINGS = frozenset({"transaction_isolation", "transaction_read_only", "transaction_deferrable"})
_SKIPPED_SETTINGS = _TRANSACTION_SETTINGS | {"role", "session_authorization"}


@dataclass
class _Session:
    """What a migration's session statements changed, to undo a `SET LOCAL` where its transaction ends."""

    saved: dict[str, str | None] = field(default_factory=dict)  # SET LOCAL name -> value before it

    def before(self, conn: psycopg.Connection, node) -> bool:
        """Prepare for statement `node`; False when the replay must skip it."""
        if isinstance(node, ast.TransactionStmt):
            if node.kind in (enums.TransactionStmtKind.TRANS_STMT_COMMIT, enums.TransactionStmtKind.TRANS_STMT_ROLLBACK):
                self.end(conn)  # the script's transaction ends: its SET LOCALs with it
            return node.kind in (
                enums.TransactionStmtKind.TRANS_STMT_SAVEPOINT,
                enums.TransactionStmtKind.TRANS_STMT_RELEASE,
                enums.TransactionStmtKind.TRANS_STMT_ROLLBACK_TO,
            )
        if isinstance(node, ast.VariableSetStmt):
            if node.kind == enums.VariableSetKind.VAR_SET_MULTI or (node.name or "").lower() in _SKIPPED_SETTINGS:
                return False  # SET TRANSACTION ...: how the script's transaction runs, not what it builds
            if node.is_local and node.name and node.name not in self.saved:
                row = conn.execute("SELECT current_setting(%s, true)", (node.name,)).fetchone()
                self.saved[node.name] = row[0] if row else None
        return True

    def end(self, conn: psycopg.Connection) -> None:
        for name, value in self.saved.items():
            conn.execute("SELECT set_config(%s, %s, true)", (name, value or ""))
        self.saved.clear()


# --- running the replay -------------------------------------------------------------------------------------


@dataclass
class Replayed:
    catalog: Catalog
    extensions: set[str] = field(default_factory=set)
    not_verifiable: dict[str, str] = field(default_factory=dict)  # trusted migration -> why it did not replay
    # the other schemas the history creates (`CREATE SCHEMA "audit"`; tables in them), by live name
    other_schemas: dict[str, Catalog] = field(default_factory=dict)


def _statements(migration: Migration) -> Iterable[Statement]:
    """What a replay runs, in order (transaction control included: `_Session` decides)."""
    yield from migration.statements


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


_FIX_UNTRUSTED = (
    "The wanted schema is the replay of the history in empty throw-away schemas (as Prisma's shadow database "
    "replays it), and this migration does not replay there. If it is not applied yet, correct it before it "
    "runs. If it was applied by hand, record it with run config mark_applied (or `prisma migrate resolve "
    "--applied`): a recorded migration that does not replay is reported as not verifiable instead."
)


_DYNAMIC_HINT = (
    "(an EXECUTE of one string literal, or a plain statement, is redirected; with "
    f"{settings.SHADOW_DATABASE_URL} set, the replay runs in that database and such SQL runs there as written)"
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


def _base_path(schemas: SchemaMap, extension_schemas: Sequence[str]) -> tuple[str, ...]:
    """The replay's search_path: the live schema's throw-away schema, then the installed extensions' schemas."""
    return (schemas.shadow, *(s for s in extension_schemas if s != schemas.live), *(
        [schemas.live] if schemas.live in extension_schemas else []))


def _redirected(migration: Migration, stmt: Statement, text: str, schemas: SchemaMap) -> str:
    """`text` with every name of a live schema (and every guarded relation) pointing at the throw-away ones."""
    try:
        return redirect_names(text, schemas.target, schemas.guard, schemas.bodies)
    except Unredirectable as exc:  # like a failing statement: an error, or not verifiable when trusted
        raise _Unreplayable(migration, stmt, str(stmt.line), f"{exc} {_DYNAMIC_HINT}") from None


def _run_statement(conn, migration, stmt, text, schemas, path, extensions, session) -> None:
    raw = _parsed(text) if stmt.node_type in ("TransactionStmt", "VariableSetStmt") else None
    node = raw.stmt if raw is not None else None
    if node is not None and not session.before(conn, node):
        return
    rewritten = _redirected(migration, stmt, text, schemas)
    ext = extension_name(text) if stmt.node_type == "CreateExtensionStmt" else None
    if ext:
        extensions.add(ext[0])
        _replay_extension(conn, migration, stmt, ext[0], rewritten)
        return
    conn.execute(rewritten)
    if isinstance(node, ast.VariableSetStmt) and node.kind in (
        enums.VariableSetKind.VAR_RESET, enums.VariableSetKind.VAR_RESET_ALL, enums.VariableSetKind.VAR_SET_DEFAULT
    ) and (node.kind == enums.VariableSetKind.VAR_RESET_ALL or (node.name or "").lower() == "search_path"):
        set_search_path(conn, *path)  # the server's default path would name live schemas


_INSTALLED_ALL = "SELECT extname::text FROM pg_extension"
# statements the replay handles one by one (`_Session`, extensions, search_path); the others are batched
_ONE_BY_ONE = frozenset({"TransactionStmt", "VariableSetStmt", "CreateExtensionStmt"})


_BATCH_STATEMENTS = 250  # at most this many statements in one query


@dataclass
class _Batch:
    """Statements (redirected) waiting to go to the server together, and the migrations they come from."""

    texts: list[str] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)

    def add(self, conn: psycopg.Connection, text: str, migration: Migration) -> None:
        self.texts.append(text)
        if not self.owners or self.owners[-1] != migration.name:
            self.owners.append(migration.name)
        if len(self.texts) >= _BATCH_STATEMENTS:
            self.send(conn)

    def send(self, conn: psycopg.Connection) -> None:
        """The statements as one simple query (psycopg sends a query without parameters through the simple
        protocol, which runs several statements): one round trip instead of one per statement."""
        if not self.texts:
            return
        text = "\n;\n".join(self.texts)  # a statement may end in a line comment: the separator on its own line
        owners = tuple(self.owners)
        self.texts.clear()
        self.owners.clear()
        try:
            conn.execute(text, prepare=False)
        except psycopg.Error:
            if conn.closed or conn.broken:
                raise  # the connection is lost, not the batch at fault
            raise _BatchFailed(owners) from None


def _replay_migration(conn, index, migration, schemas, path, enums, extensions, *, installed: set[str],
                      batch: _Batch, alone: bool = False, exact: bool = False) -> None:
    """Replay one migration. Its plain statements (redirected) join `batch`, which goes to the server as one
    simple query before a statement the replay handles itself (`_ONE_BY_ONE`), when it is full, at the end of
    the replay, or at the end of this migration when it is `alone`. A failing batch raises `_BatchFailed`
    naming its migrations: the replay runs again with those `alone`, then the one that fails `exact`ly,
    statement by statement, to name the statement. `CREATE EXTENSION` of an extension in `installed` (read once
    when the replay starts; emptied by a DROP EXTENSION) is skipped without asking the server again."""
    session = _Session()
    if alone:
        batch.send(conn)
    for stmt in _statements(migration):
        key = (index, stmt.number)
        if enums.skips(key):
            continue
        text = enums.create_text(key, _text(stmt)) or enums.add_text(key, _text(stmt)) or _text(stmt)
        if stmt.node_type == "DropStmt" and "extension" in text.lower():
            installed.clear()  # the history may drop an installed extension: ask the server from here on
        ext = extension_name(text) if not exact and stmt.node_type == "CreateExtensionStmt" else None
        if ext and ext[0] in installed:
            extensions.add(ext[0])
            continue
        if not exact and stmt.node_type not in _ONE_BY_ONE:
            batch.add(conn, _redirected(migration, stmt, text, schemas), migration)
            continue
        batch.send(conn)
        try:
            _run_statement(conn, migration, stmt, text, schemas, path, extensions, session)
        except psycopg.Error as exc:
            exc.add_note(f"{stmt.number}\t{stmt.line}")
            raise
    if alone or session.saved:
        batch.send(conn)  # before its SET LOCALs are undone
    session.end(conn)


class _BatchFailed(Exception):
    """A batch failed: which migration and statement is known only by running its migrations apart."""

    def __init__(self, names: tuple[str, ...]) -> None:
        super().__init__(", ".join(names))
        self.names = names


class _Unreplayable(Exception):
    """A migration failed in the replay (the replay's transaction is rolled back)."""

    def __init__(self, migration: Migration, stmt: Statement, line: str, message: str, sqlstate: str = "") -> None:
        super().__init__(message)
        self.migration, self.stmt, self.line, self.message = migration, stmt, line, message
        self.sqlstate = sqlstate


def _create_shadow(conn: psycopg.Connection, shadow: str) -> None:
    statement = sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(shadow))
    try:
        conn.execute(statement)
    except psycopg.errors.InsufficientPrivilege as exc:
        grant = sql.SQL("GRANT CONNECT, CREATE ON DATABASE {} TO {}").format(
            sql.Identifier(conn.info.dbname), sql.Identifier(conn.info.user)).as_string(conn)
        raise ErpPipelinesError(
            f"The replay of the history needs to create a throw-away schema (rolled back at once), and this "
            f"role may not: {redact(exc.diag.message_primary or str(exc))}. Nothing was written.",
            where=f"statement: {statement.as_string(conn)}; database {conn.info.dbname}, role "
            f"{conn.info.user}: the CREATE privilege on the database",
            fix=f"As the database's owner (or a superuser) run `{grant};` (every grant the sync needs: "
            f"`erp-pipelines grants --role {conn.info.user} --for sync`, docs/privileges.md), or set "
            f"{settings.SHADOW_DATABASE_URL} to a database where this role may create schemas (Prisma's "
            "shadowDatabaseUrl idea: the replay then runs there, so a role that can only read gets a plan).",
        ) from None


def _replay_once(
    conn: psycopg.Connection, migrations: Sequence[Migration], live_schema: str, alone: Collection[str] = (),
    exact: Collection[str] = (),
) -> tuple[Catalog, SchemaMap, set[str], dict[str, Catalog]]:
    """One replay of `migrations` in one transaction, rolled back; `_Unreplayable` at the first failure of a
    statement run by itself (every statement of a migration in `exact`), `_BatchFailed` at that of a batch
    (several migrations together, or one in `alone`).
    Also returns the catalogs of the other schemas the history created (live name -> catalog)."""
    extensions: set[str] = set()
    enums = enum_history(migrations)
    with conn.transaction() as throwaway:
        kept = [r[0] for r in conn.execute(_EXTENSION_SCHEMAS)]
        existing = frozenset(r[0] for r in conn.execute(_SCHEMAS))
        schemas = SchemaMap(live_schema, f"{SHADOW_PREFIX}{uuid.uuid4().hex[:10]}", frozenset(kept) - {live_schema},
                            existing)
        path = _base_path(schemas, kept)
        schemas.guard = relation_guard(conn, kept, schemas.shadow, dynamic_ok=in_shadow_database(conn))
        installed = {r[0] for r in conn.execute(_INSTALLED_ALL)}
        batch = _Batch()
        _create_shadow(conn, schemas.shadow)
        set_search_path(conn, *path)
        for index, migration in enumerate(migrations):
            try:
                _replay_migration(conn, index, migration, schemas, path, enums, extensions, installed=installed,
                                  batch=batch, alone=migration.name in alone, exact=migration.name in exact)
            except psycopg.Error as exc:
                number, line = (getattr(exc, "__notes__", None) or ["0\t0"])[-1].split("\t")
                stmt = next(s for s in migration.statements if str(s.number) == number)
                raise _Unreplayable(migration, stmt, line, schemas.unshadow(exc.diag.message_primary or str(exc)),
                                    exc.sqlstate or "") from None
        batch.send(conn)
        catalog = inspect(conn, schemas.shadow, search_path=(schemas.shadow, *path[1:], live_schema))
        created = {r[0] for r in conn.execute(_SCHEMAS)}
        # on its own path, as the live one is inspected: names in other schemas (extensions too) print qualified
        others = {live: inspect(conn, shadow, search_path=(shadow,))
                  for live, shadow in schemas.names.items() if live != live_schema and shadow in created}
        raise psycopg.Rollback(throwaway)
    catalog.enums = {name: tuple(enums.final_labels().get(name, labels)) for name, labels in catalog.enums.items()}
    return catalog, schemas, extensions, others


def replay(
    conn: psycopg.Connection,
    migrations: Sequence[Migration],
    live_schema: str,
    *,
    trusted: Collection[str] = (),
    refuse: Callable[[Migration, Statement, str, str], ErpPipelinesError] | None = None,
) -> Replayed:
    """Run `migrations` in throw-away schemas inside a transaction that is rolled back, and snapshot the one
    standing for `live_schema`.

    `conn` must be idle (not in a transaction): the replay is its own top-level transaction. A migration named
    in `trusted` (recorded as applied by the operator or by Prisma) that fails is left out of the wanted schema
    and returned in `not_verifiable` with PostgreSQL's reason: the replay starts again without it (no
    savepoints, so a long history never overflows PostgreSQL's subtransaction cache on a busy server); any other
    that fails is an ErpPipelinesError naming its file, statement and line (`refuse(migration, statement,
    PostgreSQL's message, SQLSTATE)` when given, for the caller's own advice). The
    returned catalog is named after `live_schema` so it compares with `inspect(conn, live_schema)` directly.

    Round trips: the statements of consecutive migrations go to the server together as one simple query (up to
    `_BATCH_STATEMENTS`; split where a migration holds transaction control, session settings or a CREATE
    EXTENSION to install). When a batch fails, the replay runs again with each of its migrations sent by
    itself, then with the failing one statement by statement, so the error still names its file, statement and
    line.
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise RuntimeError("replay() needs an idle connection: it runs as its own transaction")
    for migration in migrations:
        migration.statements  # noqa: B018 - parse errors surface here, before anything runs
    not_verifiable: dict[str, str] = {}
    alone: set[str] = set()  # in a batch that failed: each sent by itself, to find the migration
    exact: set[str] = set()  # whose own batch failed: statement by statement, to name the statement
    while True:
        try:
            catalog, schemas, extensions, other_catalogs = _replay_once(
                conn, [m for m in migrations if m.name not in not_verifiable], live_schema, alone, exact)
            break
        except _BatchFailed as failed:
            (alone if len(failed.names) > 1 else exact).update(failed.names)
        except _Unreplayable as failed:
            if failed.migration.name not in trusted or failed.migration.name in not_verifiable:
                if refuse is not None:
                    raise refuse(failed.migration, failed.stmt, redact(failed.message), failed.sqlstate) from None
                raise _fail(failed.migration, failed.stmt, failed.message, _FIX_UNTRUSTED) from None
            not_verifiable[failed.migration.name] = (
                f"statement {failed.stmt.number} (line {failed.line}) does not replay in an empty database: "
                f"{redact(failed.message)}"
            )
    catalog.schema = live_schema
    catalog.extensions = set(extensions)
    # longest first: the live schema's throw-away name is a prefix of the others'
    back = {shadow: live for live, shadow in sorted(schemas.names.items(), key=lambda kv: -len(kv[1]))}
    catalog = _functions_back(catalog, back, schemas.bodies)
    others = {shadow: live for live, shadow in schemas.names.items() if live != live_schema}
    if others:
        catalog = _unshadowed(catalog, others)
    other_schemas = {}
    for live, other in other_catalogs.items():
        other = _unshadowed(_functions_back(other, back, schemas.bodies), back)
        other.schema = live
        other_schemas[live] = other
    return Replayed(catalog, extensions, not_verifiable, other_schemas)


def _functions_back(catalog: Catalog, back: dict[str, str], bodies: dict[str, str]) -> Catalog:
    """pg_get_functiondef always qualifies the function's name: point it back at the live schema, and give a
    body the replay redirected back as written."""
    catalog.functions = {
        key: replace(fn, body=bodies.get(fn.body, fn.body), definition=_body_back(
            redirect_names(fn.definition, lambda name, _certain=True: back.get(name)), bodies))
        for key, fn in catalog.functions.items()
    }
    return catalog


def _body_back(definition: str, bodies: dict[str, str]) -> str:
    for redirected, written in bodies.items():
        if redirected in definition:
            return definition.replace(redirected, written)
    return definition


_BARE = re.compile(r"[a-z_][a-z0-9_$]*")


def _unshadowed(value, names: dict[str, str]):
    """`value` (a catalog, or any part of one) with each other schema's throw-away name in definitions printed
    by PostgreSQL (views, defaults, constraints, triggers) given back as the live schema's name."""
    if isinstance(value, str):
        for shadow, live in names.items():
            if shadow in value:
                quoted = live if _BARE.fullmatch(live) else '"' + live.replace('"', '""') + '"'
                value = value.replace(f'"{shadow}"', quoted).replace(shadow, quoted)
        return value
    if isinstance(value, tuple):
        return tuple(_unshadowed(v, names) for v in value)
    if isinstance(value, list):
        return [_unshadowed(v, names) for v in value]
    if isinstance(value, set):
        return {_unshadowed(v, names) for v in value}
    if isinstance(value, dict):
        return {_unshadowed(k, names): _unshadowed(v, names) for k, v in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _unshadowed(getattr(value, f.name), names) for f in fields(value)}
        return replace(value, **changes)
    return value


def missing_tables_and_columns(
    conn: psycopg.Connection,
    migrations: Sequence[Migration],
    schema: str,
    extra: dict[str, dict[str, str]] | None = None,
) -> list[str]:
    """Tables and columns the replayed migrations create (plus `extra`) that the live schema lacks."""
    return check_tables(conn, migrations, schema, extra)[0]


def check_tables(
    conn: psycopg.Connection,
    migrations: Sequence[Migration],
    schema: str,
    extra: dict[str, dict[str, str]] | None = None,
    *,
    trusted: Collection[str] = (),
    replay_conn: psycopg.Connection | None = None,
) -> tuple[list[str], dict[str, str]]:
    """Tables and columns the replayed migrations create (plus `extra`: table -> column -> type) that the
    live schema lacks, and the trusted migrations that did not replay (name -> reason). Read-only: the replay
    runs in throw-away schemas that are rolled back (on `replay_conn`, a shadow database, when given)."""
    replayed = replay(replay_conn or conn, migrations, schema, trusted=trusted)
    wanted = replayed.catalog
    with conn.transaction() as tx:
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
    return missing, replayed.not_verifiable
