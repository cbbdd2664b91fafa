"""Pointing a statement at the replay's throw-away schemas: PostgreSQL's parse tree and PL/pgSQL tokens rewritten.

The replay (`replay.py`) runs a history in throw-away schemas; this module holds how a statement's schema names
are mapped there: `SchemaMap` (live schema -> throw-away schema), `redirect_names` (a statement's parse tree,
rewritten by pglast) and `redirect_body` (a PL/pgSQL DO body, token by token).
"""

from __future__ import annotations

import re
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


class _Redirect:
    """Walks a parse tree, pointing names qualified with a mapped schema at its throw-away schema; counts what
    it changed. `lookup(schema)` gives the new name, or None to leave the schema as it is."""

    def __init__(self, lookup) -> None:
        self.lookup, self.changed = lookup, 0

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
            new = redirect_body(body.arg.sval, self._schema)
            if new != body.arg.sval:
                body.arg = ast.String(sval=new)

    def _schema_slots(self, node) -> None:
        if isinstance(node, ast.DoStmt):
            self._do_body(node)
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
        self._schema_slots(node)
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


def _ident(text: str) -> str:
    return text[1:-1].replace('""', '"') if text.startswith('"') else text.lower()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def redirect_body(body: str, schema) -> str:
    """A PL/pgSQL body (of a DO block) with schema-qualified names pointing at their throw-away schemas.

    The body is a string to PostgreSQL's parser, so it is read token by token (PostgreSQL's own scanner, which
    PL/pgSQL uses too): an identifier followed by `.` is a schema where `schema(name, certain=False)` maps it,
    and a string literal is rewritten only where PostgreSQL reads it as a relation name (`'s.t'::regclass`,
    `nextval('s.t')` and the other name-taking functions). Other literals, comments and dynamic SQL in
    `EXECUTE '...'` are left exactly as written. `schema` returns the new name or None.
    """
    try:
        tokens = pglast.parser.scan(body)
    except pglast.parser.ParseError:
        return body
    edits: list[tuple[int, int, str]] = []
    for i, token in enumerate(tokens):
        text = body[token.start:token.end + 1]
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        before = tokens[i - 1] if i else None
        if (token.name == "IDENT" and after is not None and after.name == "ASCII_46"
                and after.start == token.end + 1 and (before is None or before.name != "ASCII_46")):
            new = schema(_ident(text), False)
            if new is not None:
                edits.append((token.start, token.end, _quoted(new)))
        elif token.name == "SCONST" and text.startswith("'") and _names_a_relation(body, tokens, i):
            parts = _qualified_name(text[1:-1].replace("''", "'"))
            new = schema(parts[0]) if parts is not None and len(parts) == 2 else None
            if new is not None:
                name = ".".join(_quoted(p) for p in (new, parts[1]))
                edits.append((token.start, token.end, "'" + name.replace("'", "''") + "'"))
    for start, end, new in reversed(edits):
        body = body[:start] + new + body[end + 1:]
    return body


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


def redirect_names(text: str, lookup) -> str:
    """`text` (one statement) with every schema `lookup` maps pointing at its new name.

    The statement is returned unchanged (same text) when it names no mapped schema, so the deparser only sees
    statements that need it; one that cannot name a schema (no dot, no SCHEMA, no search_path) is not parsed.
    """
    if not _may_name_a_schema(text):
        return text
    tree = pglast.parse_sql(text)
    walker = _Redirect(lookup)
    walker.visit(tree)
    if not walker.changed:
        return text
    return ";\n".join(RawStream()(raw) for raw in tree)


def redirect_schema(text: str, live: str, shadow: str) -> str:
    """`text` (one statement) with every name qualified by `live` pointing at `shadow` instead."""
    return redirect_names(text, lambda name, _certain=True: {live: shadow}.get(name))
