"""A plain-data snapshot of one PostgreSQL schema, read from the system catalogs.

Definitions come from PostgreSQL itself (`format_type`, `pg_get_expr`, `pg_get_indexdef`,
`pg_get_constraintdef`, `pg_get_viewdef`, `pg_get_triggerdef`, all in "pretty" mode) with `search_path` set
to the inspected schema, so PostgreSQL prints names of that schema unqualified and the snapshot of a
throw-away schema compares directly with the live one. No text is rewritten: a string literal such as
`'public.x'` stays as it is.

Objects that are not the ERP's are left out: members of extensions, our own schema's functions, and
triggers named `erp_pipelines_*` (the change-capture triggers on the raw tables).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    not_null: bool
    default: str | None
    identity: str  # '' | 'a' (ALWAYS) | 'd' (BY DEFAULT)
    generated: str  # '' | 's' (STORED) | 'v' (VIRTUAL); the expression is then in `default`


@dataclass(frozen=True)
class Index:
    name: str
    table: str
    definition: str
    constraint: str | None  # the PK/UNIQUE/EXCLUDE constraint that owns it, if any
    valid: bool = True  # False: left INVALID by a failed CREATE INDEX CONCURRENTLY

    @property
    def shape(self) -> str:
        """The definition without the index's own name: equal shapes are the same index."""
        return re.sub(r"^(CREATE (?:UNIQUE )?INDEX )(\S+|\"(?:[^\"]|\"\")+\") ON ", r"\1ON ", self.definition)


@dataclass(frozen=True)
class Constraint:
    name: str
    table: str
    kind: str  # p u c f x
    definition: str  # without a trailing NOT VALID
    validated: bool
    columns: tuple[str, ...] = ()
    ref_table: str | None = None
    ref_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sequence:
    name: str
    data_type: str
    start: int
    increment: int
    minimum: int
    maximum: int
    cache: int
    cycle: bool
    owned_by: tuple[str, str] | None


@dataclass(frozen=True)
class View:
    name: str
    materialized: bool
    definition: str  # the SELECT, as pg_get_viewdef prints it


@dataclass(frozen=True)
class Function:
    """A function or procedure, keyed by `name(identity arguments)`."""

    name: str
    arguments: str
    result: str
    kind: str  # f (function) | p (procedure)
    language: str
    body: str
    attributes: str  # volatility, strictness, security definer, settings: anything else that makes it differ
    definition: str  # pg_get_functiondef: CREATE OR REPLACE FUNCTION <schema>.<name>(...) ...

    @property
    def key(self) -> str:
        return f"{self.name}({self.arguments})"

    def same_as(self, other: Function) -> bool:
        return (self.result, self.kind, self.language, self.body.strip(), self.attributes) == (
            other.result, other.kind, other.language, other.body.strip(), other.attributes
        )


@dataclass(frozen=True)
class Trigger:
    name: str
    table: str
    definition: str  # pg_get_triggerdef, pretty


OWN_PREFIX = "erp_pipelines_"


@dataclass
class Table:
    name: str
    columns: dict[str, Column] = field(default_factory=dict)


@dataclass
class Catalog:
    schema: str
    tables: dict[str, Table] = field(default_factory=dict)
    indexes: dict[str, Index] = field(default_factory=dict)
    constraints: dict[tuple[str, str], Constraint] = field(default_factory=dict)  # (table, name)
    sequences: dict[str, Sequence] = field(default_factory=dict)
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    relations: set[str] = field(default_factory=set)  # every relation name (tables, indexes, views, ...)
    identities: dict[tuple[str, str], Sequence] = field(default_factory=dict)  # (table, column) -> its sequence
    views: dict[str, View] = field(default_factory=dict)
    functions: dict[str, Function] = field(default_factory=dict)  # key: name(identity arguments)
    triggers: dict[tuple[str, str], Trigger] = field(default_factory=dict)  # (table, name)
    extensions: set[str] = field(default_factory=set)

    def column_count(self) -> int:
        return sum(len(t.columns) for t in self.tables.values())


_TABLES = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.relname
"""
_RELATIONS = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %(schema)s
"""
_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid, true), a.attidentity::text, a.attgenerated::text
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum
"""
_INDEXES = """
SELECT ic.relname, tc.relname, pg_get_indexdef(i.indexrelid, 0, true), con.conname, i.indisvalid
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class tc ON tc.oid = i.indrelid
JOIN pg_namespace n ON n.oid = tc.relnamespace
LEFT JOIN pg_constraint con
  ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')
WHERE n.nspname = %(schema)s AND tc.relkind IN ('r', 'p')
"""
_CONSTRAINTS = """
SELECT con.conname, c.relname, con.contype::text, pg_get_constraintdef(con.oid, true), con.convalidated,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.ord),
       rc.relname,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord)
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class rc ON rc.oid = con.confrelid
WHERE n.nspname = %(schema)s AND con.contype IN ('p', 'u', 'c', 'f', 'x')
"""
_SEQUENCES = """
SELECT c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
       s.seqcache, s.seqcycle, d.deptype::text, t.relname, a.attname
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_depend d ON d.objid = c.oid AND d.classid = 'pg_class'::regclass
     AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
LEFT JOIN pg_class t ON t.oid = d.refobjid
LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE n.nspname = %(schema)s
"""
_ENUMS = """
SELECT t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = %(schema)s
  AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.objid = t.oid AND x.classid = 'pg_type'::regclass
                  AND x.deptype = 'e')
GROUP BY t.typname
"""
_VIEWS = """
SELECT c.relname, c.relkind = 'm', pg_get_viewdef(c.oid, true)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('v', 'm')
  AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.objid = c.oid AND x.classid = 'pg_class'::regclass
                  AND x.deptype = 'e')
"""
_FUNCTIONS = """
SELECT p.proname, pg_get_function_identity_arguments(p.oid), coalesce(pg_get_function_result(p.oid), ''),
       p.prokind::text, l.lanname, coalesce(p.prosrc, ''),
       concat_ws(' ', p.provolatile, p.proisstrict, p.prosecdef, p.proleakproof, p.proparallel,
                 array_to_string(p.proconfig, ',')),
       pg_get_functiondef(p.oid)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
WHERE n.nspname = %(schema)s AND p.prokind IN ('f', 'p') AND p.proname NOT LIKE 'erp\\_pipelines\\_%%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.objid = p.oid AND x.classid = 'pg_proc'::regclass
                  AND x.deptype = 'e')
"""
_TRIGGERS = """
SELECT t.tgname, c.relname, pg_get_triggerdef(t.oid, true)
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace
WHERE n.nspname = %(schema)s AND NOT t.tgisinternal AND t.tgname NOT LIKE 'erp\\_pipelines\\_%%'
  AND pn.nspname <> ALL(%(own)s)
"""
_EXTENSIONS = "SELECT extname FROM pg_extension"


def set_search_path(conn: psycopg.Connection, *schemas: str) -> None:
    """SET LOCAL search_path for the current transaction, identifiers quoted by psycopg."""
    path = sql.SQL(", ").join(sql.Identifier(s) for s in schemas).as_string(conn)
    conn.execute("SELECT set_config('search_path', %s, true)", (path,))


def inspect(
    conn: psycopg.Connection,
    schema: str,
    search_path: tuple[str, ...] | None = None,
    own_schemas: Iterable[str] = ("erp_pipelines",),
) -> Catalog:
    """Snapshot `schema`. Must run inside a transaction (search_path is set locally)."""
    set_search_path(conn, *(search_path or (schema,)))
    params = {"schema": schema, "own": list(own_schemas)}
    cat = Catalog(schema=schema)
    for (name,) in conn.execute(_TABLES, params):
        cat.tables[name] = Table(name)
    cat.relations = {r for (r,) in conn.execute(_RELATIONS, params)}
    for table, col, typ, notnull, default, identity, generated in conn.execute(_COLUMNS, params):
        if table in cat.tables:
            cat.tables[table].columns[col] = Column(
                col, typ, notnull, default, identity or "", generated or ""
            )
    for name, table, definition, constraint, valid in conn.execute(_INDEXES, params):
        if table in cat.tables:
            cat.indexes[name] = Index(name, table, definition, constraint, valid)
    for name, table, kind, definition, validated, cols, ref_table, ref_cols in conn.execute(_CONSTRAINTS, params):
        definition = definition.removesuffix(" NOT VALID")
        cat.constraints[(table, name)] = Constraint(
            name, table, kind, definition, validated, tuple(cols), ref_table, tuple(ref_cols or ())
        )
    for row in conn.execute(_SEQUENCES, params):
        name, dtype, start, inc, smin, smax, cache, cycle, deptype, table, col = row
        owned = (table, col) if deptype in ("a", "i") and table else None
        seq = Sequence(name, dtype, start, inc, smin, smax, cache, cycle, owned)
        if deptype == "i" and owned:
            cat.identities[owned] = seq  # identity sequences come and go with their column
            continue
        cat.sequences[name] = seq
    for name, labels in conn.execute(_ENUMS, params):
        cat.enums[name] = tuple(labels)
    for name, materialized, definition in conn.execute(_VIEWS, params):
        cat.views[name] = View(name, materialized, definition)
    for name, args, result, kind, language, body, attributes, definition in conn.execute(_FUNCTIONS, params):
        fn = Function(name, args, result, kind, language, body, attributes, definition)
        cat.functions[fn.key] = fn
    for name, table, definition in conn.execute(_TRIGGERS, params):
        cat.triggers[(table, name)] = Trigger(name, table, definition)
    cat.extensions = {e for (e,) in conn.execute(_EXTENSIONS)}
    return cat


def fingerprint(conn: psycopg.Connection, schema: str) -> tuple:
    """A cheap value that changes whenever the schema's catalog does (to re-check a plan under the lock)."""
    return conn.execute(_FINGERPRINT, {"schema": schema}).fetchone()


_FINGERPRINT = """
SELECT (SELECT md5(string_agg(concat_ws(':', c.oid, c.relname, c.relkind, c.relnatts, i.indisvalid), ','
                              ORDER BY c.oid))
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_index i ON i.indexrelid = c.oid WHERE n.nspname = %(schema)s),
       (SELECT md5(string_agg(concat_ws(':', a.attrelid, a.attname, a.atttypid, a.attnotnull, a.attisdropped),
                              ',' ORDER BY a.attrelid, a.attnum))
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %(schema)s AND a.attnum > 0),
       (SELECT md5(string_agg(concat_ws(':', con.oid, con.conname, con.convalidated), ',' ORDER BY con.oid))
        FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace WHERE n.nspname = %(schema)s),
       (SELECT md5(string_agg(concat_ws(':', e.oid, e.enumlabel), ',' ORDER BY e.oid))
        FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = %(schema)s),
       (SELECT md5(string_agg(concat_ws(':', p.oid, p.proname, md5(coalesce(p.prosrc, ''))), ',' ORDER BY p.oid))
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %(schema)s),
       (SELECT md5(string_agg(concat_ws(':', t.oid, t.tgname), ',' ORDER BY t.oid))
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %(schema)s),
       (SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension)
"""


def row_counts(conn: psycopg.Connection, schema: str, tables: list[str]) -> dict[str, int]:
    """Exact row counts, for the 'nothing lost' check."""
    counts = {}
    for table in tables:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
        counts[table] = conn.execute(query).fetchone()[0]
    return counts


def has_rows(conn: psycopg.Connection, schema: str, table: str) -> bool:
    query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(schema, table))
    return bool(conn.execute(query).fetchone()[0])
