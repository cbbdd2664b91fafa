"""Pointing a statement at the replay's throw-away schemas: PostgreSQL's parse tree and PL/pgSQL tokens rewritten.

The replay (`replay.py`) runs a history in throw-away schemas; this module holds how a statement's schema names
are mapped there: `SchemaMap` (live schema -> throw-away schema), `redirect_names` (a statement's parse tree,
rewritten by pglast) and `redirect_body` (a PL/pgSQL DO body, token by token).

Unqualified names: the replay's search_path starts with its throw-away schema, but a live schema that holds an
installed extension stays on it (the extension's types, functions and operators must resolve). `RelationGuard`
keeps relation lookups from reaching it: an unqualified relation name (a `RangeVar`, a `DROP`/`COMMENT ON`
name, a `'name'::regclass` or `nextval('name')` string, a name after FROM/JOIN/UPDATE/INTO/TABLE in a DO body)
that is also the name of a live relation on that path (one no extension owns) is qualified with the throw-away
schema the lookup should find, so it finds the replay's own relation or fails as it would in Prisma's shadow
database. CTE names and temporary tables are left alone.

Dynamic SQL in a DO body: an `EXECUTE '...'` literal whose content parses as SQL is redirected like a
statement; an `EXECUTE` of a string built at run time (`format()`, `||`, a variable) cannot be redirected, so
a DO body holding one together with a literal naming a live schema (or, under the guard, a live relation) is
refused (`Unredirectable`) unless the replay runs in a shadow database.

Function bodies (PL/pgSQL, and SQL given as a string) are redirected the same way where the replay creates
them (dynamic SQL in them is left as written, not refused), and `SchemaMap.bodies` remembers each as written,
so the wanted catalog shows the body the history wrote.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pglast
from pglast import ast, enums
from pglast.stream import RawStream

SHADOW_PREFIX = "erp_pipelines_shadow_"
# functions whose first argument, a string, PostgreSQL reads as a relation name
_NAME_TAKING_FUNCTIONS = frozenset({"nextval", "setval", "currval", "pg_get_serial_sequence", "to_regclass",
                                    "pg_relation_size", "pg_total_relation_size"})
SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast"})


# --- rewriting qualified names in the parse tree -------------------------------------------------------------


def _is_name_list(value) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) >= 2
        and all(isinstance(v, ast.String) for v in value)
    )


_IDENT = re.compile(r'\s*(?:"((?:[^"]|"")*)"|([A-Za-z_][A-Za-z0-9_$]*))\s*')


def _qualified_name(text: str) -> list[str] | None:
    """The parts of a (possibly quoted) dotted name as PostgreSQL reads a regclass string, or None."""
    parts, at = [], 0
    while True:
        match = _IDENT.match(text, at)
        if not match:
            return None
        parts.append(match.group(1).replace('""', '"') if match.group(1) is not None else match.group(2).lower())
        at = match.end()
        if at == len(text):
            return parts
        if text[at] != ".":
            return None
        at += 1


@dataclass
class SchemaMap:
    """Live schema name -> its throw-away schema, assigned the first time a statement names it."""

    live: str
    shadow: str
    kept: frozenset[str] = frozenset()  # schemas left as they are (installed extensions' schemas)
    existing: frozenset[str] = frozenset()  # schemas of the database: a name list starting with one names it
    names: dict[str, str] = field(default_factory=dict)
    guard: RelationGuard | None = None  # unqualified names of live relations the replay's path reaches
    # PL/pgSQL function bodies as the replay created them -> as written (the catalog shows them as written)
    bodies: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.names.setdefault(self.live, self.shadow)

    def target(self, name: str, certain: bool = True) -> str | None:
        """The throw-away schema for schema `name`. `certain` is False where the name may as well be a table's
        (the first of two names: `"User"."email"`, `DROP TRIGGER t ON "User"`): then only a schema of the
        database or one the history created so far is mapped."""
        if name in self.names:
            return self.names[name]
        if name in SYSTEM_SCHEMAS or name in self.kept or name.startswith(("pg_temp", "pg_toast", "$", SHADOW_PREFIX)):
            return None
        if not certain and name not in self.existing:
            return None
        self.names[name] = f"{self.shadow}_{len(self.names)}"
        return self.names[name]

    def unshadow(self, text: str) -> str:
        """`text` (a message) with every throw-away schema's name replaced by the live one it stands for."""
        for live, shadow in sorted(self.names.items(), key=lambda kv: -len(kv[1])):
            text = text.replace(shadow, live)
        return text


class Unredirectable(Exception):
    """A statement the replay cannot point at its throw-away schemas (dynamic SQL naming a live schema)."""


# relations of the live schemas on the replay's path that no extension owns (pg_depend deptype 'e')
_GUARDED_RELATIONS = """
SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'i', 'I')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype = 'e')
"""
_CURRENT_PATH = "SELECT current_schemas(false)::text[]"
_WORD = re.compile(r'"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_$]*)')
_RESET_ALL = re.compile(r"\breset\s+all\b|\bdiscard\s+all\b", re.IGNORECASE)


def _words(text: str) -> set[str]:
    """Every identifier `text` may hold, folded and as written (a superset: words of literals and comments too,
    where a name is written as a string)."""
    words: set[str] = set()
    for match in _WORD.finditer(text):
        if match.group(1) is not None:
            words.add(match.group(1).replace('""', '"'))
        else:
            words.update((match.group(2), match.group(2).lower()))
    return words


@dataclass
class RelationGuard:
    """The live relations an unqualified name could reach through the replay's search_path, and where such a
    name must point instead (`qualify`).

    `names` are the relations of `live_schemas` (live schemas on the replay's path: those holding an installed
    extension) that no extension owns. While the path reaches one of `live_schemas`, a guarded name is qualified
    with the first throw-away schema of the path (where the history's own relation of that name is, or where a
    lookup fails as it would in Prisma's shadow database). The path is the replay's own (`shadow` first) until
    a statement changes it; then `current_path()` reads it from the session (after a `SET LOCAL search_path`,
    or `set_config` / a DO body touching it, every time: its end is not seen here).
    """

    names: frozenset[str]
    live_schemas: frozenset[str]
    shadow: str
    current_path: Callable[[], Sequence[str]] | None = None
    dynamic_ok: bool = False  # the replay runs in a shadow database: dynamic SQL reaches nothing live
    _home: str | None = field(default=None, init=False)
    _known: bool = field(default=False, init=False)
    _volatile: bool = field(default=False, init=False)

    def __post_init__(self) -> None:  # the replay's own path: its throw-away schema, then `live_schemas`
        self._home, self._known = (self.shadow if self.live_schemas else None), True

    def home(self) -> str | None:
        """The throw-away schema a guarded unqualified name is qualified with, or None (the path reaches no live
        schema, so lookups are isolated as they are)."""
        if (self._volatile or not self._known) and self.current_path is not None:
            path = list(self.current_path())
            reaches = any(s in self.live_schemas for s in path)
            # no throw-away schema on a path that reaches a live one: the replay's own, where lookups fail
            self._home = next((s for s in path if s.startswith(SHADOW_PREFIX)), self.shadow) if reaches else None
            self._known = True
        return self._home

    def qualify(self, name: str) -> str | None:
        return self.home() if name in self.names else None

    def may_apply(self, text: str) -> bool:
        """True when `text` may hold a guarded name; notes a statement that changes the search_path."""
        lowered = text.lower()
        if "search_path" in lowered or _RESET_ALL.search(text):
            self._path_changes(text)
        return bool(self.names) and not self.names.isdisjoint(_words(text))

    def _path_changes(self, text: str) -> None:
        try:
            tree = pglast.parse_sql(text)
        except pglast.parser.ParseError:
            tree = ()
        plain = bool(tree) and all(
            isinstance(raw.stmt, ast.VariableSetStmt) and not raw.stmt.is_local
            and (raw.stmt.kind == enums.VariableSetKind.VAR_RESET_ALL or (raw.stmt.name or "").lower() == "search_path")
            for raw in tree
        )
        if plain:
            self._known = False  # SET / RESET search_path: read the new path once, when next needed
        else:
            self._volatile = True  # SET LOCAL, set_config(), a DO body...: read it every time from now on


def relation_guard(conn, live_schemas: Sequence[str], shadow: str, *, dynamic_ok: bool = False) -> RelationGuard:
    """The guard for a replay whose search_path holds the live schemas `live_schemas` after its throw-away
    schema `shadow` (read inside the replay's transaction, on `conn`)."""
    names = frozenset(r[0] for r in conn.execute(_GUARDED_RELATIONS, (list(live_schemas),))) if live_schemas else frozenset()
    return RelationGuard(names, frozenset(live_schemas), shadow,
                         lambda: conn.execute(_CURRENT_PATH).fetchone()[0], dynamic_ok)


class _Redirect:
    """Walks a parse tree, pointing names qualified with a mapped schema at its throw-away schema, and guarded
    unqualified relation names (`guard`) at the throw-away schema the lookup must find; counts what it changed.
    `lookup(schema)` gives the new name, or None to leave the schema as it is. `ctes`: names of the statement's
    common table expressions, never qualified."""

    def __init__(self, lookup, guard: RelationGuard | None = None, ctes: frozenset[str] = frozenset(),
                 bodies: dict[str, str] | None = None) -> None:
        self.lookup, self.changed, self.guard, self.ctes, self.bodies = lookup, 0, guard, ctes, bodies

    def _relation(self, name: str | None) -> str | None:
        """The throw-away schema for unqualified relation name `name`, or None to leave it as written."""
        if self.guard is None or not name or name in self.ctes:
            return None
        new = self.guard.qualify(name)
        if new is not None:
            self.changed += 1
        return new

    def _relation_names(self, node) -> bool:
        """DROP / COMMENT ON a relation (or a trigger, rule, policy ON one) named by name lists: schema names
        redirected, an unqualified relation name guarded. False when `node` is not such a statement."""
        if isinstance(node, ast.DropStmt):
            kind, objects = node.removeType, node.objects
        elif isinstance(node, ast.CommentStmt):
            kind, objects = node.objtype, (node.object,)
        else:
            return False
        if not objects or not all(isinstance(o, tuple) and o and all(isinstance(v, ast.String) for v in o)
                                  for o in objects):
            return False
        out = []
        for names in objects:
            new = self._name_list(names) if len(names) >= 2 else names
            unqualified = len(names) == 1 and kind in _RELATION_KINDS or (
                len(names) == 2 and kind in _ON_RELATION_KINDS)
            if new is names and unqualified:
                home = self._relation(names[0].sval)
                new = (ast.String(sval=home), *names) if home is not None else names
            out.append(new)
        if isinstance(node, ast.DropStmt):
            node.objects = tuple(out)
        else:
            node.object = out[0]
        return True

    def _schema(self, name: str | None, certain: bool = True) -> str | None:
        if not name:
            return None
        new = self.lookup(name, certain)
        if new is not None and new != name:
            self.changed += 1
            return new
        return None

    def _name_list(self, names: tuple) -> tuple:
        # schema.name, schema.table.column or db.schema.name: the schema is first, or second after a catalog
        if len(names) in (2, 3):
            new = self._schema(names[0].sval, certain=False)
            if new is not None:
                return (ast.String(sval=new), *names[1:])
        return names

    def _name_literal(self, const) -> None:
        """A string constant that PostgreSQL reads as a relation name ('schema.name'), redirected."""
        if not isinstance(const, ast.A_Const) or not isinstance(const.val, ast.String):
            return
        parts = _qualified_name(const.val.sval)
        if parts is not None and len(parts) == 2:
            new = self._schema(parts[0])
            if new is not None:
                const.val = ast.String(sval=".".join('"' + p.replace('"', '""') + '"' for p in (new, parts[1])))
        elif parts is not None and len(parts) == 1:
            home = self._relation(parts[0])
            if home is not None:
                const.val = ast.String(sval=".".join('"' + p.replace('"', '""') + '"' for p in (home, parts[0])))

    def _regclass_literal(self, node: ast.TypeCast) -> None:
        type_names = [n.sval for n in (node.typeName.names or ()) if isinstance(n, ast.String)]
        if type_names[-1:] == ["regclass"]:
            self._name_literal(node.arg)

    def _function_literal(self, node: ast.FuncCall) -> None:
        names = [n.sval for n in (node.funcname or ()) if isinstance(n, ast.String)]
        if names[-1:] and names[-1] in _NAME_TAKING_FUNCTIONS and node.args:
            self._name_literal(node.args[0])

    def _strings(self, values) -> tuple | None:
        """A tuple of String nodes holding schema names, redirected (None when nothing changed)."""
        changed = False
        out = []
        for value in values or ():
            new = self._schema(value.sval) if isinstance(value, ast.String) else None
            out.append(ast.String(sval=new) if new is not None else value)
            changed |= new is not None
        return tuple(out) if changed else None

    def _do_body(self, node: ast.DoStmt) -> None:
        """A PL/pgSQL DO body with its schema-qualified names redirected (`redirect_body`)."""
        options = {opt.defname: opt for opt in node.args or ()}
        language = options.get("language")
        body = options.get("as")
        if language is not None and getattr(language.arg, "sval", "plpgsql").lower() != "plpgsql":
            return
        if body is not None and isinstance(body.arg, ast.String):
            new = redirect_body(body.arg.sval, self._schema, self.guard)
            if new != body.arg.sval:
                body.arg = ast.String(sval=new)
                self.changed += 1

    def _function_body(self, node: ast.CreateFunctionStmt) -> None:
        """A PL/pgSQL function's body redirected like a DO body (it runs when a migration calls the function or
        fires its trigger), except that dynamic SQL is left as written (creating it touches nothing); an SQL
        function's body (a string) like statements. The body as written is kept in `bodies`. Only where
        `bodies` is given (the replay, not the catalog's way back)."""
        options = {opt.defname: opt for opt in node.options or ()}
        language, body = options.get("language"), options.get("as")
        language = getattr(getattr(language, "arg", None), "sval", "").lower()
        if self.bodies is None or language not in ("plpgsql", "sql"):
            return
        if body is None or not isinstance(body.arg, tuple) or len(body.arg) != 1 or not isinstance(body.arg[0], ast.String):
            return
        old = body.arg[0].sval
        if language == "sql":  # checked at creation (check_function_bodies), on the replay's path
            try:
                new = redirect_names(old, self._schema, self.guard)
            except pglast.parser.ParseError:
                return
        else:
            new = redirect_body(old, self._schema, self.guard, dynamic=False)
        if new != old:
            body.arg = (ast.String(sval=new),)
            self.bodies[new] = old
            self.changed += 1

    def _schema_slots(self, node) -> None:
        if isinstance(node, ast.DoStmt):
            self._do_body(node)
        elif isinstance(node, ast.CreateFunctionStmt):
            self._function_body(node)
        elif isinstance(node, (ast.CreateSchemaStmt, ast.RangeVar)):
            node.schemaname = self._schema(node.schemaname) or node.schemaname
        elif isinstance(node, ast.AlterObjectSchemaStmt):
            node.newschema = self._schema(node.newschema) or node.newschema
        elif isinstance(node, ast.CreateExtensionStmt):
            for opt in node.options or ():
                if opt.defname == "schema" and isinstance(opt.arg, ast.String):
                    new = self._schema(opt.arg.sval)
                    if new is not None:
                        opt.arg = ast.String(sval=new)
        elif isinstance(node, ast.VariableSetStmt) and (node.name or "").lower() == "search_path":
            for arg in node.args or ():
                if isinstance(arg, ast.A_Const) and isinstance(arg.val, ast.String):
                    new = self._schema(arg.val.sval)
                    if new is not None:
                        arg.val = ast.String(sval=new)
        elif (
            isinstance(node, (ast.DropStmt, ast.CommentStmt)) and getattr(node, "removeType", getattr(node, "objtype", None))
            == enums.ObjectType.OBJECT_SCHEMA
        ):
            if isinstance(node, ast.DropStmt):
                node.objects = self._strings(node.objects) or node.objects
            elif isinstance(node.object, ast.String):
                new = self._schema(node.object.sval)
                node.object = ast.String(sval=new) if new is not None else node.object
        elif isinstance(node, ast.GrantStmt) and (
            node.objtype == enums.ObjectType.OBJECT_SCHEMA or node.targtype == enums.GrantTargetType.ACL_TARGET_ALL_IN_SCHEMA
        ):
            node.objects = self._strings(node.objects) or node.objects
        elif isinstance(node, ast.AlterDefaultPrivilegesStmt):
            for opt in node.options or ():
                if opt.defname == "schemas":
                    opt.arg = self._strings(opt.arg) or opt.arg
        elif isinstance(node, ast.RenameStmt) and node.renameType == enums.ObjectType.OBJECT_SCHEMA:
            node.subname = self._schema(node.subname) or node.subname
            node.newname = self._schema(node.newname) or node.newname

    def visit(self, node) -> None:
        if isinstance(node, (list, tuple)):
            for item in node:
                self.visit(item)
            return
        if not isinstance(node, ast.Node):
            return
        if self._relation_names(node):
            return
        self._schema_slots(node)
        if (isinstance(node, ast.RangeVar) and node.schemaname is None and node.catalogname is None
                and node.relpersistence != "t"):
            node.schemaname = self._relation(node.relname)
        if isinstance(node, ast.ColumnRef):  # "table"."column": only schema.table.column names a schema
            fields = node.fields or ()
            if len(fields) == 3 and _is_name_list(fields):
                node.fields = self._name_list(fields)
            return
        if isinstance(node, ast.TypeCast) and node.typeName is not None:
            self._regclass_literal(node)
        if isinstance(node, ast.FuncCall):
            self._function_literal(node)
        for slot in node.__slots__:
            value = getattr(node, slot)
            if _is_name_list(value):
                setattr(node, slot, self._name_list(value))
            elif isinstance(value, tuple) and value and all(_is_name_list(v) for v in value):
                setattr(node, slot, tuple(self._name_list(v) for v in value))
            else:
                self.visit(value)


_RELATION_KINDS = frozenset({
    enums.ObjectType.OBJECT_TABLE, enums.ObjectType.OBJECT_VIEW, enums.ObjectType.OBJECT_MATVIEW,
    enums.ObjectType.OBJECT_SEQUENCE, enums.ObjectType.OBJECT_INDEX, enums.ObjectType.OBJECT_FOREIGN_TABLE,
})
# `DROP TRIGGER t ON "User"`: (table, trigger); `COMMENT ON COLUMN "User"."x"`: (table, column)
_ON_RELATION_KINDS = frozenset({
    enums.ObjectType.OBJECT_TRIGGER, enums.ObjectType.OBJECT_RULE, enums.ObjectType.OBJECT_POLICY,
    enums.ObjectType.OBJECT_COLUMN,
})


def _ctes(node) -> set[str]:
    """Names of every common table expression in a parse tree."""
    if isinstance(node, (list, tuple)):
        return set().union(*(_ctes(item) for item in node)) if node else set()
    if not isinstance(node, ast.Node):
        return set()
    found = {node.ctename} if isinstance(node, ast.CommonTableExpr) and node.ctename else set()
    for slot in node.__slots__:
        found |= _ctes(getattr(node, slot))
    return found


def _ident(text: str) -> str:
    return text[1:-1].replace('""', '"') if text.startswith('"') else text.lower()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def redirect_body(body: str, schema, guard: RelationGuard | None = None, *, dynamic: bool = True) -> str:
    """A PL/pgSQL body (of a DO block) with schema-qualified names pointing at their throw-away schemas.

    The body is a string to PostgreSQL's parser, so it is read token by token (PostgreSQL's own scanner, which
    PL/pgSQL uses too): an identifier followed by `.` is a schema where `schema(name, certain=False)` maps it,
    and a string literal is rewritten only where PostgreSQL reads it as a relation name (`'s.t'::regclass`,
    `nextval('s.t')` and the other name-taking functions). A guarded unqualified relation name (`guard`) after
    FROM, JOIN, UPDATE, INSERT INTO, TABLE, ONLY, IF EXISTS, REFERENCES, SEQUENCE, VIEW, TRUNCATE or LOCK is
    qualified. An `EXECUTE '...'` literal whose content parses as SQL is redirected as a statement
    (`redirect_names`); an `EXECUTE` of a string built at run time, in a body where a literal names a live
    schema (or a guarded relation), raises `Unredirectable` (unless `dynamic` is False: a function's body,
    which may never run). Other literals and comments are left exactly as written. `schema` returns the new
    name or None.
    """
    try:
        tokens = pglast.parser.scan(body)
    except pglast.parser.ParseError:
        return body
    edits: list[tuple[int, int, str]] = []
    built: str | None = None  # the first EXECUTE of a string built at run time
    for i, token in enumerate(tokens):
        text = body[token.start:token.end + 1]
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        before = tokens[i - 1] if i else None
        if (token.name == "IDENT" and after is not None and after.name == "ASCII_46"
                and after.start == token.end + 1 and (before is None or before.name != "ASCII_46")):
            new = schema(_ident(text), False)
            if new is not None:
                edits.append((token.start, token.end, _quoted(new)))
        elif (token.name == "IDENT" and guard is not None and _after_relation_keyword(tokens, i)
                and (after is None or after.name != "ASCII_46") and (before is None or before.name != "ASCII_46")
                and not (after is not None and after.name == "ASCII_40" and before.name in ("FROM", "JOIN"))):
            home = guard.qualify(_ident(text))
            if home is not None:
                edits.append((token.start, token.end, f"{_quoted(home)}.{_quoted(_ident(text))}"))
        elif token.name == "SCONST" and text.startswith("'") and _names_a_relation(body, tokens, i):
            parts = _qualified_name(text[1:-1].replace("''", "'"))
            new = schema(parts[0]) if parts is not None and len(parts) == 2 else None
            if parts is not None and len(parts) == 1 and guard is not None:
                home = guard.qualify(parts[0])
                parts, new = ([parts[0], parts[0]], home) if home is not None else (parts, None)
            if new is not None:
                name = ".".join(_quoted(p) for p in (new, parts[1]))
                edits.append((token.start, token.end, "'" + name.replace("'", "''") + "'"))
        elif token.name == "EXECUTE" and after is not None and after.name not in ("FUNCTION", "PROCEDURE"):
            literal = _executed_literal(body, tokens, i)
            if literal is None:
                built = built or _statement_preview(body, tokens, i)
            else:
                edit = _redirected_literal(literal, schema, guard)
                if edit is not None:
                    edits.append((after.start, after.end, edit))
    if built is not None and dynamic and not (guard is not None and guard.dynamic_ok):
        _refuse_dynamic(body, tokens, schema, guard, built)
    for start, end, new in reversed(edits):
        body = body[:start] + new + body[end + 1:]
    return body


# keywords after which an identifier names a relation (INTO only after INSERT: SELECT ... INTO is a variable)
_RELATION_KEYWORDS = frozenset({"FROM", "JOIN", "UPDATE", "TABLE", "ONLY", "REFERENCES", "SEQUENCE", "VIEW",
                                "TRUNCATE", "LOCK_P"})


def _after_relation_keyword(tokens, i: int) -> bool:
    previous = tokens[i - 1].name if i else None
    if previous in _RELATION_KEYWORDS:
        return True
    if previous == "INTO":
        return i >= 2 and tokens[i - 2].name == "INSERT"
    return previous == "EXISTS" and i >= 2 and tokens[i - 2].name == "IF_P"


def _executed_literal(body: str, tokens, i: int) -> str | None:
    """The text of the string literal `EXECUTE` (tokens[i]) runs when it is one constant, else None."""
    following = tokens[i + 1:i + 3]
    if not following or following[0].name != "SCONST":
        return None
    if len(following) == 2 and following[1].name not in ("ASCII_59", "USING", "INTO"):
        return None  # 'ALTER ...' || x, 'a' 'b'...: built at run time
    text = body[following[0].start:following[0].end + 1]
    return text if text.startswith(("'", "$")) else None  # E'...' and U&'...' are not decoded here


def _literal_content(text: str) -> tuple[str, str] | None:
    """(content, dollar tag or '') of a '...' or $tag$...$tag$ literal."""
    if text.startswith("'"):
        return text[1:-1].replace("''", "'"), ""
    tag = text[:text.index("$", 1) + 1]
    return text[len(tag):-len(tag)], tag


def _redirected_literal(text: str, schema, guard: RelationGuard | None) -> str | None:
    """An EXECUTE literal with the SQL it holds redirected (None when it holds no SQL or nothing changed)."""
    content, tag = _literal_content(text)
    try:
        pglast.parse_sql(content)
    except pglast.parser.ParseError:
        return None
    new = redirect_names(content, schema, guard)
    if new == content:
        return None
    if tag and tag not in new:
        return tag + new + tag
    return "'" + new.replace("'", "''") + "'"


def _statement_preview(body: str, tokens, i: int) -> str:
    end = next((t.end for t in tokens[i:] if t.name == "ASCII_59"), tokens[-1].end)
    return " ".join(body[tokens[i].start:end + 1].split())[:160]


def _refuse_dynamic(body: str, tokens, schema, guard: RelationGuard | None, dynamic: str) -> None:
    """Raise `Unredirectable` when a literal of a body with dynamic SQL names a live schema or guarded relation."""
    for token in tokens:
        text = body[token.start:token.end + 1]
        if token.name != "SCONST" or not text.startswith(("'", "$")):
            continue
        content = _literal_content(text)[0]
        whole = _qualified_name(content)  # a name as SQL reads it, or as format('%I') / quote_ident() quote it
        names = [whole[0], content.strip()] if whole is not None and len(whole) == 1 else []
        try:
            inner = pglast.parser.scan(content)
        except pglast.parser.ParseError:
            inner = []
        names += [_ident(content[t.start:t.end + 1]) for k, t in enumerate(inner)
                  if t.name == "IDENT" and k + 1 < len(inner) and inner[k + 1].name == "ASCII_46"]
        for name in names:
            if schema(name, False) is not None:
                what = f"schema {name!r}"
            elif guard is not None and guard.qualify(name) is not None:
                what = f"relation {name!r} (a live table reached through an installed extension's schema)"
            else:
                continue
            raise Unredirectable(
                f"a DO block runs SQL built at run time ({dynamic}) and names the live {what} in the literal "
                f"{' '.join(text.split())[:80]}: the replay cannot point that SQL at its throw-away schemas, so it "
                "would act on live objects"
            )


def _names_a_relation(body: str, tokens, i: int) -> bool:
    """True when string literal `tokens[i]` is cast to regclass or is a name-taking function's first argument."""
    following = [body[t.start:t.end + 1].lower() for t in tokens[i + 1:i + 3]]
    if following == ["::", "regclass"]:
        return True
    preceding = [body[t.start:t.end + 1] for t in tokens[max(i - 2, 0):i]]
    return len(preceding) == 2 and preceding[1] == "(" and _ident(preceding[0]) in _NAME_TAKING_FUNCTIONS


def _may_name_a_schema(text: str) -> bool:
    lowered = text.lower()
    return "." in text or "schema" in lowered or "search_path" in lowered or "u&" in lowered


def redirect_names(text: str, lookup, guard: RelationGuard | None = None, bodies: dict[str, str] | None = None) -> str:
    """`text` (one statement) with every schema `lookup` maps pointing at its new name, and every unqualified
    relation name `guard` guards qualified with the throw-away schema it must resolve to. Given `bodies`, a
    PL/pgSQL function's body is redirected too and recorded there (redirected -> as written).

    The statement is returned unchanged (same text) when it names no mapped schema, so the deparser only sees
    statements that need it; one that cannot name a schema (no dot, no SCHEMA, no search_path) nor a guarded
    relation is not parsed.
    """
    guarded = guard is not None and guard.may_apply(text)
    if not (guarded or _may_name_a_schema(text) or "execute" in text.lower()):
        return text
    tree = pglast.parse_sql(text)
    walker = _Redirect(lookup, guard, frozenset(_ctes(tree)) if guarded else frozenset(), bodies)
    walker.visit(tree)
    if not walker.changed:
        return text
    return ";\n".join(RawStream()(raw) for raw in tree)


def redirect_schema(text: str, live: str, shadow: str) -> str:
    """`text` (one statement) with every name qualified by `live` pointing at `shadow` instead."""
    return redirect_names(text, lambda name, _certain=True: {live: shadow}.get(name))
