"""Diff a wanted catalog (the replayed history) against the live one into a typed `Plan`.

One planning function per kind of object; each reads the two catalogs and appends steps and drift. Policy
lives here, in one place: we add extensions, enum types and values, sequences, tables, columns, keys,
indexes, functions, views, CHECK constraints, foreign keys and triggers; we never drop, rename, retype or
replace. Pure: no database access (except the `table_has_rows` callback the caller passes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from psycopg import sql

from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.prisma.catalog import Catalog, Column, Constraint, Index, Sequence
from erp_pipelines.prisma.changes import Drift, Plan, Step, StepKind

PRISMA_TABLE = "_prisma_migrations"
NEVER_DROP = "we never drop: run it yourself if you agree"


@dataclass
class _Context:
    wanted: Catalog
    live: Catalog
    plan: Plan
    table_has_rows: Callable[[str], bool]
    skipped: set[str]  # wanted tables that cannot be created (name taken): everything on them is skipped

    def add(self, kind: StepKind, statement: sql.Composable, obj: str, table: str | None = None, **kw) -> None:
        self.plan.steps.append(Step(kind, statement.as_string(None), obj, table, **kw))

    def drift(self, kind: str, obj: str, wanted: str, live: str, fix: str = "") -> None:
        self.plan.drift.append(Drift(kind, obj, wanted, live, fix))


def build_plan(wanted: Catalog, live: Catalog, table_has_rows: Callable[[str], bool] = lambda _t: False) -> Plan:
    """Everything `wanted` has that `live` lacks, as steps; everything else that differs, as drift.

    Raises ErpPipelinesError (before anything is written) for a change we refuse to make, such as a NOT NULL
    column without default on a table that has rows.
    """
    ctx = _Context(wanted, live, Plan(), table_has_rows, set())
    for planner in PLANNERS:
        planner(ctx)
    return ctx.plan


def plan_extensions(ctx: _Context) -> None:
    for name in sorted(ctx.wanted.extensions - ctx.live.extensions):
        ctx.add(StepKind.CREATE_EXTENSION, sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(name)),
                name)


def plan_enums(ctx: _Context) -> None:
    for name, labels in ctx.wanted.enums.items():
        if name not in ctx.live.enums:
            values = sql.SQL(", ").join(sql.Literal(v) for v in labels)
            ctx.add(StepKind.CREATE_ENUM, sql.SQL("CREATE TYPE {} AS ENUM ({})").format(sql.Identifier(name), values),
                    name)
            continue
        have = ctx.live.enums[name]
        present = list(have)
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
            statement = sql.SQL("ALTER TYPE {} ADD VALUE IF NOT EXISTS {} {}").format(
                sql.Identifier(name), sql.Literal(label), where
            )
            ctx.add(StepKind.ADD_ENUM_VALUE, statement, label, name, order=i)
        extra = [v for v in have if v not in labels]
        if extra:
            ctx.drift("enum values", name, ", ".join(labels), ", ".join(have), "extra values are kept")
        common_wanted = [v for v in labels if v in have]
        common_live = [v for v in have if v in labels]
        if common_wanted != common_live:
            ctx.drift("enum order", name, ", ".join(labels), ", ".join(have),
                      "PostgreSQL cannot reorder enum values; ORDER BY on this column sorts differently")


def _sequence_options(seq: Sequence) -> str:
    return (f"AS {seq.data_type} INCREMENT {seq.increment} MINVALUE {seq.minimum} MAXVALUE {seq.maximum} "
            f"START {seq.start} CACHE {seq.cache}{' CYCLE' if seq.cycle else ''}")


def plan_sequences(ctx: _Context) -> None:
    for name, seq in ctx.wanted.sequences.items():
        have = ctx.live.sequences.get(name)
        if have is not None:
            if _sequence_options(have) != _sequence_options(seq):
                ctx.drift("sequence", name, _sequence_options(seq), _sequence_options(have))
            continue
        if name in ctx.live.relations:
            ctx.drift("name taken", name, "sequence", "another relation")
            continue
        statement = sql.SQL(
            "CREATE SEQUENCE {} AS {} INCREMENT BY {} MINVALUE {} MAXVALUE {} START WITH {} CACHE {} {}"
        ).format(
            sql.Identifier(name), sql.SQL(seq.data_type), sql.Literal(seq.increment), sql.Literal(seq.minimum),
            sql.Literal(seq.maximum), sql.Literal(seq.start), sql.Literal(seq.cache),
            sql.SQL("CYCLE" if seq.cycle else "NO CYCLE"),
        )
        ctx.add(StepKind.CREATE_SEQUENCE, statement, name)
        if seq.owned_by:
            owner = sql.Identifier(*seq.owned_by)
            ctx.add(StepKind.OWN_SEQUENCE, sql.SQL("ALTER SEQUENCE {} OWNED BY {}").format(sql.Identifier(name), owner),
                    name, seq.owned_by[0])


def column_sql(col: Column, identity: Sequence | None = None) -> sql.Composable:
    """A column definition: generated columns as GENERATED ... STORED/VIRTUAL, never as a DEFAULT; an
    identity with its sequence's options."""
    parts: list[sql.Composable] = [sql.Identifier(col.name), sql.SQL(col.type)]
    if col.generated in ("s", "v"):
        storage = "STORED" if col.generated == "s" else "VIRTUAL"
        parts.append(sql.SQL("GENERATED ALWAYS AS ({}) " + storage).format(sql.SQL(col.default or "")))
    elif col.default is not None:
        parts.append(sql.SQL("DEFAULT {}").format(sql.SQL(col.default)))
    if col.identity:
        kind = "ALWAYS" if col.identity == "a" else "BY DEFAULT"
        parts.append(sql.SQL(f"GENERATED {kind} AS IDENTITY"))
        if identity is not None:
            parts.append(sql.SQL(
                f"(INCREMENT BY {identity.increment} MINVALUE {identity.minimum} MAXVALUE {identity.maximum} "
                f"START WITH {identity.start} CACHE {identity.cache}{' CYCLE' if identity.cycle else ' NO CYCLE'})"
            ))
    if col.not_null:
        parts.append(sql.SQL("NOT NULL"))
    return sql.SQL(" ").join(parts)


def _describe(col: Column) -> str:
    text = col.type + (" NOT NULL" if col.not_null else "")
    if col.generated:
        return text + f" GENERATED ALWAYS AS ({col.default}) {'STORED' if col.generated == 's' else 'VIRTUAL'}"
    if col.identity:
        text += " GENERATED " + ("ALWAYS" if col.identity == "a" else "BY DEFAULT") + " AS IDENTITY"
    return text + (f" DEFAULT {col.default}" if col.default is not None else "")


_GENERATED = {"": "not generated", "s": "STORED", "v": "VIRTUAL"}
_IDENTITY = {"": "no identity", "a": "ALWAYS", "d": "BY DEFAULT"}


def _column_drift(ctx: _Context, table: str, want: Column, have: Column) -> None:
    obj = f"{table}.{want.name}"
    if have.type != want.type:
        ctx.drift("column type", obj, want.type, have.type)
    if have.not_null != want.not_null:
        ctx.drift("nullability", obj, _nn(want.not_null), _nn(have.not_null))
    if have.generated != want.generated or (want.generated and have.default != want.default):
        ctx.drift("generated column", obj, f"{_GENERATED[want.generated]} {want.default or ''}".strip(),
                  f"{_GENERATED[have.generated]} {have.default or ''}".strip())
    elif (have.default or "") != (want.default or ""):
        ctx.drift("default", obj, want.default or "(none)", have.default or "(none)")
    if have.identity != want.identity:
        ctx.drift("identity", obj, _IDENTITY[want.identity], _IDENTITY[have.identity])
    else:
        ws, hs = ctx.wanted.identities.get((table, want.name)), ctx.live.identities.get((table, want.name))
        if ws and hs and _sequence_options(ws) != _sequence_options(hs):
            ctx.drift("identity sequence", obj, _sequence_options(ws), _sequence_options(hs))


def plan_tables(ctx: _Context) -> None:
    wanted, live = ctx.wanted, ctx.live
    for tname, table in wanted.tables.items():
        if tname not in live.tables:
            if tname in live.relations:
                ctx.drift("name taken", tname, "table", "another relation (view, index or sequence)")
                ctx.skipped.add(tname)
                continue
            columns = sql.SQL(",\n    ").join(
                column_sql(c, wanted.identities.get((tname, c.name))) for c in table.columns.values()
            )
            ctx.add(StepKind.CREATE_TABLE,
                    sql.SQL("CREATE TABLE {} (\n    {}\n)").format(sql.Identifier(tname), columns), tname, tname)
            continue
        live_cols = live.tables[tname].columns
        for cname, col in table.columns.items():
            have = live_cols.get(cname)
            if have is not None:
                _column_drift(ctx, tname, col, have)
                continue
            needs_value = col.not_null and col.default is None and not col.identity and not col.generated
            if needs_value and ctx.table_has_rows(tname):
                raise ErpPipelinesError(
                    f"Cannot add NOT NULL column {tname}.{cname} without a default: table {tname} already "
                    "has rows, and PostgreSQL would reject it (or the app would lose writes).",
                    where=f"table {live.schema}.{tname}, column {cname} ({_describe(col)})",
                    fix="Give the column a DEFAULT in the migration, or add it as nullable, backfill it, and "
                    "set NOT NULL in a later migration. Nothing was written.",
                )
            ctx.add(StepKind.ADD_COLUMN,
                    sql.SQL("ALTER TABLE {} ADD COLUMN {}").format(
                        sql.Identifier(tname), column_sql(col, wanted.identities.get((tname, cname)))
                    ),
                    cname, tname)
        for cname in live_cols.keys() - table.columns.keys():
            ctx.drift("extra column", f"{tname}.{cname}", "(not in the migrations)", live_cols[cname].type)
    for tname in sorted(live.tables.keys() - wanted.tables.keys() - {PRISMA_TABLE}):
        ctx.drift("extra table", tname, "(not in the migrations)", f"{len(live.tables[tname].columns)} columns")


def _valid_shapes(live: Catalog) -> dict[tuple[str, str], str]:
    """(table, shape) -> name of a VALID live index: an INVALID index enforces and serves nothing."""
    return {(i.table, i.shape): i.name for i in sorted(live.indexes.values(), key=lambda i: i.name) if i.valid}


def equivalent_constraint(con: Constraint, wanted: Catalog, live: Catalog) -> str | None:
    """A live constraint or index doing what `con` does under another name; a UNIQUE is never a primary key."""
    for other in sorted(live.constraints.values(), key=lambda c: c.name):
        if other.table == con.table and other.kind == con.kind and other.definition == con.definition:
            return other.name
    index = wanted.indexes.get(con.name)
    if con.kind not in ("p", "u") or index is None:
        return None
    match = _valid_shapes(live).get((con.table, index.shape))
    if match is None:
        return None
    owner = live.indexes[match].constraint
    owner_kind = live.constraints[(con.table, owner)].kind if owner and (con.table, owner) in live.constraints else None
    if con.kind == "p":
        return match if owner_kind == "p" else None
    return match


def plan_keys(ctx: _Context) -> None:
    """Primary keys, UNIQUE and EXCLUDE constraints (they own an index)."""
    wanted, live = ctx.wanted, ctx.live
    for (tname, cname), con in sorted(wanted.constraints.items()):
        if tname in ctx.skipped or con.kind not in ("p", "u", "x"):
            continue
        existing = live.constraints.get((tname, cname))
        if existing is not None:
            if existing.definition != con.definition or existing.kind != con.kind:
                ctx.drift("constraint", f"{tname}.{cname}", con.definition, existing.definition)
            continue
        other = equivalent_constraint(con, wanted, live)
        if other:
            ctx.plan.equivalents.append(f"constraint `{tname}.{cname}` exists as `{other}`")
            continue
        if con.kind == "p" and any(c.table == tname and c.kind == "p" for c in live.constraints.values()):
            ctx.drift("primary key", tname, con.definition, "a different primary key")
            continue
        if cname in live.relations:
            ctx.drift("name taken", cname, con.definition, "another relation")
            continue
        statement = sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
            sql.Identifier(tname), sql.Identifier(cname), sql.SQL(con.definition)
        )
        ctx.add(StepKind.ADD_KEY, statement, cname, tname)


def invalid_index_fix(index: Index) -> str:
    return (f"DROP INDEX CONCURRENTLY {sql.Identifier(index.name).as_string(None)}; then "
            f"{index.definition.replace('CREATE INDEX', 'CREATE INDEX CONCURRENTLY', 1).replace('CREATE UNIQUE INDEX', 'CREATE UNIQUE INDEX CONCURRENTLY', 1)} "  # noqa: E501
            f"({NEVER_DROP})")


def plan_indexes(ctx: _Context) -> None:
    wanted, live = ctx.wanted, ctx.live
    shapes = _valid_shapes(live)
    for iname, index in sorted(wanted.indexes.items()):
        if index.constraint or index.table in ctx.skipped:
            continue
        have = live.indexes.get(iname)
        if have is not None:
            if not have.valid:
                ctx.drift("invalid index", iname, index.definition, "INVALID (a failed CREATE INDEX CONCURRENTLY)",
                          invalid_index_fix(have))
            elif have.shape != index.shape:
                ctx.drift("index", iname, index.definition, have.definition)
            continue
        match = shapes.get((index.table, index.shape))
        if match:
            ctx.plan.equivalents.append(f"index `{iname}` exists as `{match}`")
            continue
        if iname in live.relations:
            ctx.drift("name taken", iname, index.definition, "another relation")
            continue
        ctx.add(StepKind.CREATE_INDEX, sql.SQL(index.definition), iname, index.table)
    for iname, index in sorted(live.indexes.items()):
        if not index.valid and iname not in wanted.indexes:
            ctx.drift("invalid index", iname, "(not in the migrations)", "INVALID", invalid_index_fix(index))


def _plan_not_valid(ctx: _Context, kind: str) -> None:
    """CHECK constraints ('c') or foreign keys ('f'): added NOT VALID, validated after commit."""
    wanted, live = ctx.wanted, ctx.live
    step_kind = StepKind.ADD_CHECK if kind == "c" else StepKind.ADD_FOREIGN_KEY
    label = "check constraint" if kind == "c" else "foreign key"
    for (tname, cname), con in sorted(wanted.constraints.items()):
        if con.kind != kind or tname in ctx.skipped or con.ref_table in ctx.skipped:
            continue
        existing = live.constraints.get((tname, cname))
        if existing is not None:
            if existing.definition != con.definition:
                ctx.drift(label, f"{tname}.{cname}", con.definition, existing.definition)
            continue
        other = equivalent_constraint(con, wanted, live)
        if other:
            ctx.plan.equivalents.append(f"{label} `{tname}.{cname}` exists as `{other}`")
            continue
        table, name = sql.Identifier(tname), sql.Identifier(cname)
        ctx.add(step_kind, sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {} NOT VALID").format(table, name,
                                                                                          sql.SQL(con.definition)),
                cname, tname)
        if con.validated:
            ctx.add(StepKind.VALIDATE_CONSTRAINT,
                    sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(table, name), cname, tname,
                    constraint_kind=kind)


def plan_checks(ctx: _Context) -> None:
    _plan_not_valid(ctx, "c")


def plan_foreign_keys(ctx: _Context) -> None:
    _plan_not_valid(ctx, "f")


def plan_functions(ctx: _Context) -> None:
    for order, (key, fn) in enumerate(ctx.wanted.functions.items()):
        have = ctx.live.functions.get(key)
        if have is None:
            ctx.add(StepKind.CREATE_FUNCTION, sql.SQL(fn.definition), key, order=order)
        elif not have.same_as(fn):
            ctx.drift("function", key, fn.body.strip(), have.body.strip(),
                      "replaced never: apply the change with a migration")


def plan_views(ctx: _Context) -> None:
    for order, (name, view) in enumerate(ctx.wanted.views.items()):
        have = ctx.live.views.get(name)
        if have is None:
            if name in ctx.live.relations:
                ctx.drift("name taken", name, "view", "another relation")
                continue
            what = "CREATE MATERIALIZED VIEW {} AS {}" if view.materialized else "CREATE VIEW {} AS {}"
            body = view.definition.strip().rstrip(";")
            ctx.add(StepKind.CREATE_VIEW, sql.SQL(what).format(sql.Identifier(name), sql.SQL(body)), name,
                    order=order)
        elif (have.definition, have.materialized) != (view.definition, view.materialized):
            ctx.drift("view", name, view.definition, have.definition, "replaced never: apply the change with a migration")


def plan_triggers(ctx: _Context) -> None:
    for (tname, name), trigger in sorted(ctx.wanted.triggers.items()):
        if tname in ctx.skipped:
            continue
        have = ctx.live.triggers.get((tname, name))
        if have is None:
            ctx.add(StepKind.CREATE_TRIGGER, sql.SQL(trigger.definition), name, tname)
        elif have.definition != trigger.definition:
            ctx.drift("trigger", f"{tname}.{name}", trigger.definition, have.definition,
                      "replaced never: apply the change with a migration")


PLANNERS: tuple[Callable[[_Context], None], ...] = (
    plan_extensions,
    plan_enums,
    plan_sequences,
    plan_tables,
    plan_keys,
    plan_indexes,
    plan_checks,
    plan_foreign_keys,
    plan_functions,
    plan_views,
    plan_triggers,
)


def _nn(not_null: bool) -> str:
    return "NOT NULL" if not_null else "NULL"
