"""Diff a wanted catalog (what the baseline migration creates) against the live one, into a plan.

The plan is plain data: the exact SQL statements that add what is missing, the drift that is only
reported, and the objects found under another name. Policy lives here, in one place: we add tables,
columns, sequences, enum types and values, indexes and constraints; we never drop, rename or retype.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.prisma.catalog import Catalog, Column, Constraint

PRISMA_TABLE = "_prisma_migrations"

# Order in which kinds of steps run: types before tables, tables before their constraints, foreign keys last.
STEP_ORDER = (
    "create_enum",
    "add_enum_value",
    "create_sequence",
    "create_table",
    "add_column",
    "own_sequence",
    "add_constraint",
    "create_index",
    "add_foreign_key",
    "validate_foreign_key",
)


@dataclass(frozen=True)
class Step:
    kind: str
    name: str
    sql: str
    table: str | None = None


@dataclass(frozen=True)
class Drift:
    kind: str
    object: str
    wanted: str
    live: str


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    equivalents: list[str] = field(default_factory=list)

    def ordered(self) -> list[Step]:
        return sorted(self.steps, key=lambda s: STEP_ORDER.index(s.kind))

    def count(self, *kinds: str) -> int:
        return sum(1 for s in self.steps if s.kind in kinds)

    def summary(self) -> dict[str, int]:
        return {
            "statements": len(self.steps),
            "tables_added": self.count("create_table"),
            "columns_added": self.count("add_column"),
            "indexes_added": self.count("create_index"),
            "constraints_added": self.count("add_constraint", "add_foreign_key"),
            "sequences_added": self.count("create_sequence"),
            "enum_changes": self.count("create_enum", "add_enum_value"),
            "drift_items": len(self.drift),
            "found_under_other_name": len(self.equivalents),
        }

    def sql_script(self) -> str:
        return "\n".join(s.sql.rstrip(";") + ";" for s in self.ordered())

    def markdown(self) -> str:
        lines = []
        if self.steps:
            lines += ["**Statements**", "", "```sql", self.sql_script(), "```", ""]
        else:
            lines += ["Nothing to do: the database already has everything the baseline creates.", ""]
        if self.equivalents:
            lines += ["**Present under another name (not duplicated)**", ""]
            lines += [f"- {e}" for e in self.equivalents] + [""]
        if self.drift:
            lines += ["**Drift (reported, never changed)**", "", "| kind | object | wanted | live |", "|---|---|---|---|"]
            lines += [f"| {d.kind} | `{d.object}` | `{d.wanted}` | `{d.live}` |" for d in self.drift]
        return "\n".join(lines)


def _column_sql(col: Column) -> sql.Composable:
    parts: list[sql.Composable] = [sql.Identifier(col.name), sql.SQL(col.type)]
    if col.generated == "s" and col.default:
        parts.append(sql.SQL("GENERATED ALWAYS AS ({}) STORED").format(sql.SQL(col.default)))
    elif col.default is not None:
        parts.append(sql.SQL("DEFAULT {}").format(sql.SQL(col.default)))
    if col.identity:
        kind = "ALWAYS" if col.identity == "a" else "BY DEFAULT"
        parts.append(sql.SQL(f"GENERATED {kind} AS IDENTITY"))
    if col.not_null:
        parts.append(sql.SQL("NOT NULL"))
    return sql.SQL(" ").join(parts)


def _describe(col: Column) -> str:
    text = col.type + (" NOT NULL" if col.not_null else "")
    return text + (f" DEFAULT {col.default}" if col.default is not None else "")


def build_plan(
    wanted: Catalog,
    live: Catalog,
    conn: psycopg.Connection,
    table_has_rows: Callable[[str], bool],
) -> Plan:
    """Everything `wanted` has that `live` lacks, as SQL; everything else that differs, as drift.

    Raises ErpPipelinesError (before anything is written) for a change we refuse to make, such as a NOT NULL
    column without default on a table that has rows.
    """
    plan = Plan()

    def add(kind: str, name: str, statement: sql.Composable, table: str | None = None) -> None:
        plan.steps.append(Step(kind, name, statement.as_string(conn), table))

    def drift(kind: str, obj: str, want: str, have: str) -> None:
        plan.drift.append(Drift(kind, obj, want, have))

    # Enum types and their values.
    for name, labels in wanted.enums.items():
        if name not in live.enums:
            values = sql.SQL(", ").join(sql.Literal(v) for v in labels)
            add("create_enum", name, sql.SQL("CREATE TYPE {} AS ENUM ({})").format(sql.Identifier(name), values))
            continue
        present = list(live.enums[name])
        for i, label in enumerate(labels):
            if label in present:
                continue
            before = [v for v in labels[:i] if v in present]
            if before:
                where = sql.SQL("AFTER {}").format(sql.Literal(before[-1]))
                present.insert(present.index(before[-1]) + 1, label)
            else:
                where = sql.SQL("BEFORE {}").format(sql.Literal(present[0])) if present else sql.SQL("")
                present.insert(0, label)
            add(
                "add_enum_value",
                f"{name}.{label}",
                sql.SQL("ALTER TYPE {} ADD VALUE {} {}").format(sql.Identifier(name), sql.Literal(label), where),
            )
        extra = [v for v in live.enums[name] if v not in labels]
        if extra:
            drift("enum values", name, ", ".join(labels), ", ".join(live.enums[name]))

    # Tables whose name is taken by something else cannot be created; skip everything that hangs on them.
    skipped: set[str] = set()
    created_sequences: list[str] = []
    for name, seq in wanted.sequences.items():
        if name in live.sequences:
            continue
        if name in live.relations:
            drift("name taken", name, "sequence", "another relation")
            continue
        add(
            "create_sequence",
            name,
            sql.SQL(
                "CREATE SEQUENCE {} AS {} INCREMENT BY {} MINVALUE {} MAXVALUE {} START WITH {} CACHE {} {}"
            ).format(
                sql.Identifier(name),
                sql.SQL(seq.data_type),
                sql.Literal(seq.increment),
                sql.Literal(seq.minimum),
                sql.Literal(seq.maximum),
                sql.Literal(seq.start),
                sql.Literal(seq.cache),
                sql.SQL("CYCLE" if seq.cycle else "NO CYCLE"),
            ),
        )
        created_sequences.append(name)

    for tname, table in wanted.tables.items():
        if tname not in live.tables:
            if tname in live.relations:
                drift("name taken", tname, "table", "another relation (view, index or sequence)")
                skipped.add(tname)
                continue
            columns = sql.SQL(",\n    ").join(_column_sql(c) for c in table.columns.values())
            add("create_table", tname, sql.SQL("CREATE TABLE {} (\n    {}\n)").format(sql.Identifier(tname), columns), tname)
            continue
        live_cols = live.tables[tname].columns
        for cname, col in table.columns.items():
            have = live_cols.get(cname)
            if have is None:
                needs_value = col.not_null and col.default is None and not col.identity and not col.generated
                if needs_value and table_has_rows(tname):
                    raise ErpPipelinesError(
                        f"Cannot add NOT NULL column {tname}.{cname} without a default: table {tname} already "
                        "has rows, and PostgreSQL would reject it (or the app would lose writes).",
                        where=f"table {live.schema}.{tname}, column {cname} ({_describe(col)})",
                        fix="Give the column a DEFAULT in the migration, or add it as nullable, backfill it, and "
                        "set NOT NULL in a later migration. Nothing was written.",
                    )
                add(
                    "add_column",
                    f"{tname}.{cname}",
                    sql.SQL("ALTER TABLE {} ADD COLUMN {}").format(sql.Identifier(tname), _column_sql(col)),
                    tname,
                )
                continue
            if have.type != col.type:
                drift("column type", f"{tname}.{cname}", col.type, have.type)
            if have.not_null != col.not_null:
                drift("nullability", f"{tname}.{cname}", _nn(col.not_null), _nn(have.not_null))
            if (have.default or "") != (col.default or ""):
                drift("default", f"{tname}.{cname}", col.default or "(none)", have.default or "(none)")
        for cname in live_cols.keys() - table.columns.keys():
            drift("extra column", f"{tname}.{cname}", "(not in baseline)", live_cols[cname].type)

    for tname in sorted(live.tables.keys() - wanted.tables.keys() - {PRISMA_TABLE}):
        drift("extra table", tname, "(not in baseline)", f"{len(live.tables[tname].columns)} columns")

    for name in created_sequences:
        owner = wanted.sequences[name].owned_by
        if owner and owner[0] not in skipped:
            add(
                "own_sequence",
                name,
                sql.SQL("ALTER SEQUENCE {} OWNED BY {}").format(sql.Identifier(name), sql.Identifier(*owner)),
            )

    live_shapes = {(i.table, i.shape): i.name for i in live.indexes.values()}

    def equivalent_constraint(con: Constraint) -> str | None:
        for other in live.constraints.values():
            if other.table == con.table and other.kind == con.kind and other.definition == con.definition:
                return other.name
        index = wanted.indexes.get(con.name)
        if con.kind in ("p", "u") and index is not None:
            match = live_shapes.get((con.table, index.shape))
            if match and (con.kind == "u" or live.indexes[match].constraint):
                return match
        return None

    for (tname, cname), con in sorted(wanted.constraints.items()):
        if tname in skipped or con.kind == "f":
            continue
        existing = live.constraints.get((tname, cname))
        if existing is not None:
            if existing.definition != con.definition:
                drift("constraint", f"{tname}.{cname}", con.definition, existing.definition)
            continue
        other = equivalent_constraint(con)
        if other:
            plan.equivalents.append(f"constraint `{tname}.{cname}` exists as `{other}`")
            continue
        if con.kind == "p" and any(c.table == tname and c.kind == "p" for c in live.constraints.values()):
            drift("primary key", tname, con.definition, "a different primary key")
            continue
        if con.kind in ("p", "u", "x") and cname in live.relations:
            drift("name taken", cname, con.definition, "another relation")
            continue
        add(
            "add_constraint",
            f"{tname}.{cname}",
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                sql.Identifier(tname), sql.Identifier(cname), sql.SQL(con.definition)
            ),
            tname,
        )

    for iname, index in sorted(wanted.indexes.items()):
        if index.constraint or index.table in skipped:
            continue
        if iname in live.indexes:
            if live.indexes[iname].shape != index.shape:
                drift("index", iname, index.definition, live.indexes[iname].definition)
            continue
        match = live_shapes.get((index.table, index.shape))
        if match:
            plan.equivalents.append(f"index `{iname}` exists as `{match}`")
            continue
        if iname in live.relations:
            drift("name taken", iname, index.definition, "another relation")
            continue
        add("create_index", iname, sql.SQL(index.definition), index.table)

    for (tname, cname), con in sorted(wanted.constraints.items()):
        if con.kind != "f" or tname in skipped or (con.ref_table in skipped):
            continue
        existing = live.constraints.get((tname, cname))
        if existing is not None:
            if existing.definition != con.definition:
                drift("foreign key", f"{tname}.{cname}", con.definition, existing.definition)
            continue
        other = equivalent_constraint(con)
        if other:
            plan.equivalents.append(f"foreign key `{tname}.{cname}` exists as `{other}`")
            continue
        table, name = sql.Identifier(tname), sql.Identifier(cname)
        add(
            "add_foreign_key",
            f"{tname}.{cname}",
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {} NOT VALID").format(table, name, sql.SQL(con.definition)),
            tname,
        )
        add(
            "validate_foreign_key",
            f"{tname}.{cname}",
            sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(table, name),
            tname,
        )
    return plan


def _nn(not_null: bool) -> str:
    return "NOT NULL" if not_null else "NULL"
