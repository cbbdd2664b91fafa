"""A plain-data snapshot of one PostgreSQL schema, read from the system catalogs.

Definitions come from PostgreSQL itself (`format_type`, `pg_get_expr`, `pg_get_indexdef`,
`pg_get_constraintdef`) with `search_path` set to the inspected schema, so names print unqualified and the
snapshot of a throw-away schema compares directly with the live one.
"""

from __future__ import annotations

import re
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
    generated: str  # '' | 's' (STORED) | 'v' (VIRTUAL)


@dataclass(frozen=True)
class Index:
    name: str
    table: str
    definition: str
    constraint: str | None  # the PK/UNIQUE/EXCLUDE constraint that owns it, if any

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
       pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum
"""
_INDEXES = """
SELECT ic.relname, tc.relname, pg_get_indexdef(i.indexrelid), con.conname
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class tc ON tc.oid = i.indrelid
JOIN pg_namespace n ON n.oid = tc.relnamespace
LEFT JOIN pg_constraint con
  ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')
WHERE n.nspname = %(schema)s AND tc.relkind IN ('r', 'p')
"""
_CONSTRAINTS = """
SELECT con.conname, c.relname, con.contype::text, pg_get_constraintdef(con.oid), con.convalidated,
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
WHERE n.nspname = %(schema)s GROUP BY t.typname
"""


def set_search_path(conn: psycopg.Connection, *schemas: str) -> None:
    """SET LOCAL search_path for the current transaction, identifiers quoted by psycopg."""
    path = sql.SQL(", ").join(sql.Identifier(s) for s in schemas).as_string(conn)
    conn.execute("SELECT set_config('search_path', %s, true)", (path,))


def inspect(conn: psycopg.Connection, schema: str, search_path: tuple[str, ...] | None = None) -> Catalog:
    """Snapshot `schema`. Must run inside a transaction (search_path is set locally)."""
    set_search_path(conn, *(search_path or (schema,)))
    params = {"schema": schema}
    strip = _qualifier_stripper(schema)
    cat = Catalog(schema=schema)
    for (name,) in conn.execute(_TABLES, params):
        cat.tables[name] = Table(name)
    cat.relations = {r for (r,) in conn.execute(_RELATIONS, params)}
    for table, col, typ, notnull, default, identity, generated in conn.execute(_COLUMNS, params):
        if table in cat.tables:
            cat.tables[table].columns[col] = Column(
                col, strip(typ), notnull, strip(default) if default else None, identity or "", generated or ""
            )
    for name, table, definition, constraint in conn.execute(_INDEXES, params):
        if table in cat.tables:
            cat.indexes[name] = Index(name, table, strip(definition), constraint)
    for name, table, kind, definition, validated, cols, ref_table, ref_cols in conn.execute(_CONSTRAINTS, params):
        definition = strip(definition)
        definition = definition.removesuffix(" NOT VALID")
        cat.constraints[(table, name)] = Constraint(
            name, table, kind, definition, validated, tuple(cols), ref_table, tuple(ref_cols or ())
        )
    for row in conn.execute(_SEQUENCES, params):
        name, dtype, start, inc, smin, smax, cache, cycle, deptype, table, col = row
        if deptype == "i":
            continue  # identity sequences come and go with their column
        owned = (table, col) if deptype == "a" and table else None
        cat.sequences[name] = Sequence(name, dtype, start, inc, smin, smax, cache, cycle, owned)
    for name, labels in conn.execute(_ENUMS, params):
        cat.enums[name] = tuple(labels)
    return cat


def _qualifier_stripper(schema: str):
    """Remove `schema.` qualifiers PostgreSQL prints (pg_get_indexdef always qualifies the table)."""
    quoted = '"' + schema.replace('"', '""') + '"'
    prefixes = {quoted + ".", schema + "."} if re.fullmatch(r"[a-z_][a-z0-9_$]*", schema) else {quoted + "."}
    pattern = re.compile("|".join(r"(?<![\w\"])" + re.escape(p) for p in prefixes))

    def strip(text: str) -> str:
        return pattern.sub("", text)

    return strip


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
