"""The SQL of a declared rollup, generated from its declaration (rollups/component.py) and the catalog.

Why generated: a rollup declared in YAML names its raw table, time column, id, key columns and measures;
everything it runs per UTC day is derived here, composed with `psycopg.sql` (identifiers quoted, values
parameters), for the raw table's real column types (read once per connection, like rollups/row_hash.py).

The shapes follow the tuned statements of rollups/sql.py:
- `grouped` is THE read of the day, grouped by the key columns INCLUDING NULL keys: it gives the day's
  fingerprint (row count and per-row hash summed per group, then over the groups: an exact numeric sum, so
  equal to retention's fingerprint), the rows with a NULL key (they cannot enter the aggregate's primary
  key: never in it, so never pruned: the reconciliation reports them and retention keeps their day), the
  non-finite values, and every measure but the distinct counts;
- a distinct count is a second read hashing bare (keys, column) tuples (`count(DISTINCT)` sorts);
- the day is replaced: rows of keys without raw rows deleted, others inserted or updated only when a value
  changed (a re-run leaves rows and `updated_at` identical); a day without raw rows is left as it is;
- the statement returns the number and hash of the rows it computed; the step compares them with the rows
  read back (READBACK).

NaN and +-Infinity in a measured float/numeric column are explicit: such a value is kept out of its sum
or mean (`c < 'Infinity' AND c > '-Infinity'` is false for NaN, whose order is above every number) and
counted (`non_finite_values`, a WARN check), never compared as a mismatch.

The reconciliation is written independently of the write, with another shape for every measure, so a
formula bug cannot pass both: counts as sums of CASE, distinct counts as `count(DISTINCT)` in the one
pass, a weighted mean as the sum of each value times its row's share of the group's weight (a window
function), compared with the stored mean within 1e-9 relative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from erp_pipelines import own_schema
from erp_pipelines.rollups import row_hash
from erp_pipelines.rollups.spec import BoundSql

FLOAT_TYPES = {"real", "double precision", "numeric"}
# the aggregate column type of each measure kind
MEASURE_TYPES = {
    "count": "bigint",
    "count_if": "bigint",
    "sum": "numeric",
    "weighted_mean": "double precision",
    "distinct_count": "bigint",
}
MEAN_TOLERANCE = 1e-9


@dataclass(frozen=True)
class MeasureDecl:
    """One measured column of the aggregate (rollups/component.py Measure, as plain data)."""

    name: str
    kind: str  # count | count_if | sum | weighted_mean | distinct_count
    column: str | None = None
    weight: str | None = None  # weighted_mean only (None: every row weighs 1)
    values: tuple[str, ...] = ()  # count_if: the column's values counted, matched case-insensitively

    @property
    def param(self) -> str:
        return f"{self.name}_values"


@dataclass(frozen=True)
class RollupDecl:
    """What the generator needs of a declared rollup."""

    aggregate_table: str
    day_column: str
    raw_table: str
    ts_column: str
    id_column: str
    keys: tuple[str, ...]
    measures: tuple[MeasureDecl, ...]

    @property
    def read_columns(self) -> tuple[str, ...]:
        """Every raw column the rollup reads (the fingerprint's columns after the id)."""
        names: list[str] = [*self.keys]
        for m in self.measures:
            names += [c for c in (m.column, m.weight) if c]
        names.append(self.ts_column)
        return tuple(dict.fromkeys(n for n in names if n != self.id_column))

    def params(self) -> dict[str, list[str]]:
        """The count_if value lists, lower-cased (statement parameters)."""
        return {m.param: sorted({v.strip().lower() for v in m.values}) for m in self.measures if m.kind == "count_if"}


def _id(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def _finite(column: str) -> sql.Composed:
    return sql.SQL("({c} < 'Infinity' AND {c} > '-Infinity')").format(c=_id(column))


def _in_day(decl: RollupDecl) -> sql.Composed:
    return sql.SQL("{ts} >= %(day_start)s AND {ts} < %(day_end)s").format(ts=_id(decl.ts_column))


def _keys(decl: RollupDecl, prefix: str | None = None) -> sql.Composable:
    if prefix is None:
        return sql.SQL(", ").join(_id(k) for k in decl.keys)
    return sql.SQL(", ").join(sql.Identifier(prefix, k) for k in decl.keys)


def _with_keys(decl: RollupDecl, rest: Sequence[sql.Composable], prefix: str | None = None) -> sql.Composed:
    """`k1, k2, rest...` (no leading comma when there are no keys)."""
    parts: list[sql.Composable] = [sql.Identifier(prefix, k) if prefix else _id(k) for k in decl.keys]
    return sql.SQL(", ").join([*parts, *rest])


def _group_by(decl: RollupDecl) -> sql.Composable:
    return sql.SQL("GROUP BY {}").format(_keys(decl)) if decl.keys else sql.SQL("")


def _keys_not_null(decl: RollupDecl, prefix: str | None = None) -> sql.Composable:
    if not decl.keys:
        return sql.SQL("true")
    return sql.SQL(" AND ").join(
        sql.SQL("{} IS NOT NULL").format(sql.Identifier(prefix, k) if prefix else _id(k)) for k in decl.keys
    )


def _null_key_rows(decl: RollupDecl) -> sql.Composable:
    """The rows of a grouped CTE (column `_rows`) whose key has a NULL: in no aggregate row."""
    if not decl.keys:
        return sql.SQL("0")
    return sql.SQL("coalesce(sum(_rows) FILTER (WHERE NOT ({})), 0)").format(_keys_not_null(decl))


def _float_columns(decl: RollupDecl, types: dict[str, str]) -> list[str]:
    """Measured columns of a float or numeric type: where NaN and +-Infinity can be."""
    cols = [c for m in decl.measures for c in (m.column, m.weight) if c and m.kind in ("sum", "weighted_mean")]
    return [c for c in dict.fromkeys(cols) if types.get(c) in FLOAT_TYPES]


def _non_finite_count(decl: RollupDecl, types: dict[str, str]) -> sql.Composable:
    cols = _float_columns(decl, types)
    if not cols:
        return sql.SQL("0::bigint")
    return sql.SQL("count(*) FILTER (WHERE {})").format(
        sql.SQL(" OR ").join(sql.SQL("NOT {}").format(_finite(c)) for c in cols)
    )


def _usable(m: MeasureDecl, types: dict[str, str]) -> sql.Composable:
    """The rows a sum or mean takes: value (and weight) not NULL and, for float/numeric, finite."""
    conds = []
    for c in (m.column, m.weight):
        if c:
            conds.append(sql.SQL("{} IS NOT NULL").format(_id(c)))
            if types.get(c) in FLOAT_TYPES:
                conds.append(_finite(c))
    return sql.SQL(" AND ").join(conds) if conds else sql.SQL("true")


def _write_measure(m: MeasureDecl, types: dict[str, str]) -> sql.Composable:
    """The write's formula of a measure inside `grouped` (distinct counts come from their own CTE)."""
    t = sql.SQL(MEASURE_TYPES[m.kind])
    if m.kind == "count":
        return sql.SQL("count(*)::bigint")
    if m.kind == "count_if":
        return sql.SQL("count(*) FILTER (WHERE lower({c}::text) = ANY({p}::text[]))::bigint").format(
            c=_id(m.column), p=sql.Placeholder(m.param))
    if m.kind == "sum":
        return sql.SQL("coalesce(sum({c}) FILTER (WHERE {u}), 0)::{t}").format(c=_id(m.column), u=_usable(m, types), t=t)
    if m.kind == "weighted_mean":
        weight = _id(m.weight) if m.weight else sql.SQL("1")
        return sql.SQL(
            "(sum({c}::float8 * {w}) FILTER (WHERE {u}) / nullif(sum({w}::float8) FILTER (WHERE {u}), 0))::{t}"
        ).format(c=_id(m.column), w=weight, u=_usable(m, types), t=t)
    raise ValueError(m.kind)


def _qualified(decl: RollupDecl, schema: str) -> sql.Identifier:
    return sql.Identifier(schema, decl.aggregate_table)


def aggregate_row_hash(decl: RollupDecl, prefix: str | None = None) -> sql.Composed:
    cols = [*decl.keys, *(m.name for m in decl.measures)]
    return sql.SQL("hash_record_extended(row({}), 0)").format(
        sql.SQL(", ").join(sql.Identifier(prefix, c) if prefix else _id(c) for c in cols)
    )


def create_table(decl: RollupDecl, schema: str, key_types: dict[str, str]) -> sql.Composed:
    """The aggregate table in our own schema (created by us, never in the ERP's schema)."""
    cols: list[sql.Composable] = [sql.SQL("{} date NOT NULL").format(_id(decl.day_column))]
    cols += [sql.SQL("{} {} NOT NULL").format(_id(k), sql.SQL(key_types[k])) for k in decl.keys]
    for m in decl.measures:
        null = sql.SQL("") if m.kind == "weighted_mean" else sql.SQL(" NOT NULL")
        cols.append(sql.SQL("{} {}{}").format(_id(m.name), sql.SQL(MEASURE_TYPES[m.kind]), null))
    cols.append(sql.SQL("updated_at timestamp NOT NULL"))
    cols.append(sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(_id(c) for c in (decl.day_column, *decl.keys))))
    return sql.SQL("CREATE TABLE {} ({})").format(_qualified(decl, schema), sql.SQL(", ").join(cols))


def replace_day(decl: RollupDecl, schema: str, types: dict[str, str], raw_row_hash: str) -> sql.Composed:
    """One statement: read the day once, replace its aggregate rows, return what it computed (module doc)."""
    agg = _qualified(decl, schema)
    plain = [m for m in decl.measures if m.kind != "distinct_count"]
    distinct = [m for m in decl.measures if m.kind == "distinct_count"]
    ctes: list[sql.Composable] = [
        sql.SQL(
            "grouped AS (SELECT {cols} FROM {raw} WHERE {in_day} {group_by} HAVING count(*) > 0)"
        ).format(
            cols=_with_keys(decl, [
                sql.SQL("count(*) AS _rows"),
                sql.SQL("sum({}) AS _hash").format(sql.SQL(raw_row_hash)),  # noqa: S608 - row_hash.py
                sql.SQL("{} AS _non_finite").format(_non_finite_count(decl, types)),
                *(sql.SQL("{} AS {}").format(_write_measure(m, types), _id(m.name)) for m in plain),
            ]),
            raw=_id(decl.raw_table), in_day=_in_day(decl), group_by=_group_by(decl),
        )
    ]
    for m in distinct:
        ctes.append(sql.SQL(
            "{cte} AS (SELECT {cols} FROM (SELECT DISTINCT {inner} FROM {raw} WHERE {in_day} AND {kn} "
            "AND {c} IS NOT NULL) AS s {group_by})"
        ).format(
            cte=_id(f"d_{m.name}"), cols=_with_keys(decl, [sql.SQL("count(*)::bigint AS {}").format(_id(m.name))]),
            inner=_with_keys(decl, [_id(m.column)]), raw=_id(decl.raw_table), in_day=_in_day(decl),
            kn=_keys_not_null(decl), c=_id(m.column), group_by=_group_by(decl),
        ))
    joins = sql.SQL(" ").join(
        sql.SQL("LEFT JOIN {cte} ON {on}").format(
            cte=_id(f"d_{m.name}"),
            on=sql.SQL(" AND ").join(
                [sql.SQL("{} = {}").format(sql.Identifier(f"d_{m.name}", k), sql.Identifier("g", k)) for k in decl.keys]
                or [sql.SQL("true")]
            ),
        )
        for m in distinct
    )
    fresh_cols = [
        *(sql.SQL("{} AS {}").format(sql.Identifier("g", m.name), _id(m.name)) for m in plain),
        *(sql.SQL("coalesce({}, 0)::bigint AS {}").format(sql.Identifier(f"d_{m.name}", m.name), _id(m.name))
          for m in distinct),
    ]
    measure_names = [m.name for m in decl.measures]
    ctes.append(sql.SQL("fresh AS (SELECT {cols} FROM grouped AS g {joins} WHERE {kn})").format(
        cols=_with_keys(decl, fresh_cols, prefix="g"), joins=joins, kn=_keys_not_null(decl, "g"),
    ))
    same_key = sql.SQL(" AND ").join(
        [sql.SQL("f.{k} = d.{k}").format(k=_id(k)) for k in decl.keys] or [sql.SQL("true")]
    )
    ctes.append(sql.SQL(
        "removed AS (DELETE FROM {agg} AS d WHERE d.{day} = %(day)s AND EXISTS (SELECT 1 FROM grouped) "
        "AND NOT EXISTS (SELECT 1 FROM fresh AS f WHERE {same_key}) RETURNING 1)"
    ).format(agg=agg, day=_id(decl.day_column), same_key=same_key))
    all_cols = [*decl.keys, *measure_names]
    ctes.append(sql.SQL(
        "written AS (INSERT INTO {agg} AS d ({cols}) SELECT %(day)s, {src}, %(now)s FROM fresh "
        "ON CONFLICT ({pk}) DO UPDATE SET {sets} WHERE ({old}) IS DISTINCT FROM ({new}) "
        "RETURNING (xmax = 0) AS inserted)"
    ).format(
        agg=agg,
        cols=sql.SQL(", ").join(_id(c) for c in (decl.day_column, *all_cols, "updated_at")),
        src=sql.SQL(", ").join(_id(c) for c in all_cols),
        pk=sql.SQL(", ").join(_id(c) for c in (decl.day_column, *decl.keys)),
        sets=sql.SQL(", ").join(sql.SQL("{c} = EXCLUDED.{c}").format(c=_id(c)) for c in (*measure_names, "updated_at")),
        old=sql.SQL(", ").join(sql.Identifier("d", c) for c in measure_names),
        new=sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(_id(c)) for c in measure_names),
    ))
    null_key = _null_key_rows(decl)
    return sql.SQL(
        "WITH {ctes} SELECT "
        "(SELECT coalesce(sum(_rows), 0) FROM grouped)::bigint AS raw_rows, "
        "(SELECT coalesce(sum(_hash), 0) FROM grouped) AS raw_hash, "
        "(SELECT {null_key} FROM grouped)::bigint AS null_key_rows, "
        "(SELECT coalesce(sum(_non_finite), 0) FROM grouped)::bigint AS non_finite_values, "
        "(SELECT count(*) FROM fresh) AS rollup_rows, "
        "(SELECT coalesce(sum({row_hash}), 0) FROM fresh) AS rollup_hash, "
        "(SELECT count(*) FROM written WHERE inserted) AS inserted, "
        "(SELECT count(*) FROM written WHERE NOT inserted) AS updated, "
        "(SELECT count(*) FROM removed) AS deleted"
    ).format(ctes=sql.SQL(",\n").join(ctes), null_key=null_key, row_hash=aggregate_row_hash(decl))


def readback(decl: RollupDecl, schema: str) -> sql.Composed:
    """The day's aggregate rows read back: their number and hash, and per measure the day's figure (sum of
    the rows; the mean of the rows' means for a weighted mean)."""
    figures = [
        sql.SQL("{f}({c})::float8").format(f=sql.SQL("avg" if m.kind == "weighted_mean" else "sum"), c=_id(m.name))
        for m in decl.measures
    ]
    return sql.SQL("SELECT count(*), coalesce(sum({h}), 0){sep}{figs} FROM {agg} WHERE {day} = %(day)s").format(
        h=aggregate_row_hash(decl), sep=sql.SQL(", ") if figures else sql.SQL(""),
        figs=sql.SQL(", ").join(figures), agg=_qualified(decl, schema), day=_id(decl.day_column),
    )


def _check_measure(m: MeasureDecl, types: dict[str, str]) -> sql.Composable:
    """The reconciliation's formula of a measure over the day's rows `r` (with `_share` for means)."""
    if m.kind == "count":
        return sql.SQL("sum(1)::bigint")
    if m.kind == "count_if":
        return sql.SQL("sum(CASE WHEN lower({c}::text) = ANY({p}::text[]) THEN 1 ELSE 0 END)::bigint").format(
            c=_id(m.column), p=sql.Placeholder(m.param))
    if m.kind == "sum":
        return sql.SQL("coalesce(sum(CASE WHEN {u} THEN {c} ELSE 0 END), 0)::numeric").format(
            c=_id(m.column), u=_usable(m, types))
    if m.kind == "weighted_mean":
        return sql.SQL("sum({c}::float8 * {share})").format(c=_id(m.column), share=_id(f"_share_{m.name}"))
    if m.kind == "distinct_count":
        return sql.SQL("count(DISTINCT {c})::bigint").format(c=_id(m.column))
    raise ValueError(m.kind)


def reconcile(decl: RollupDecl, schema: str, types: dict[str, str], raw_row_hash: str) -> sql.Composed:
    """(mismatched key groups, aggregate rows, NULL-key raw rows, non-finite values, raw_rows, raw_hash) of
    one day: the stored rows against an independent recomputation (module doc), and the day's fingerprint."""
    means = [m for m in decl.measures if m.kind == "weighted_mean"]
    partition = sql.SQL("PARTITION BY {}").format(_keys(decl)) if decl.keys else sql.SQL("")
    shares = [
        sql.SQL("CASE WHEN {u} THEN {w}::float8 / nullif(sum(CASE WHEN {u} THEN {w}::float8 END) OVER ({p}), 0) END "
                "AS {name}").format(u=_usable(m, types), w=_id(m.weight) if m.weight else sql.SQL("1"), p=partition,
                                    name=_id(f"_share_{m.name}"))
        for m in means
    ]
    hashed = sql.SQL("{} AS _row_hash").format(sql.SQL(raw_row_hash))  # noqa: S608 - row_hash.py
    rows = sql.SQL("SELECT *, {cols} FROM {raw} WHERE {in_day}").format(
        cols=sql.SQL(", ").join([hashed, *shares]), raw=_id(decl.raw_table), in_day=_in_day(decl))
    measure_names = [m.name for m in decl.measures]
    raw_all = sql.SQL("raw_all AS (SELECT {cols} FROM ({rows}) AS r {group_by})").format(
        cols=_with_keys(decl, [
            sql.SQL("count(*) AS _rows"), sql.SQL("sum(_row_hash) AS _hash"),
            sql.SQL("{} AS _non_finite").format(_non_finite_count(decl, types)),
            *(sql.SQL("{} AS {}").format(_check_measure(m, types), _id(m.name)) for m in decl.measures),
        ]),
        rows=rows, group_by=_group_by(decl),
    )
    raw = sql.SQL("raw AS (SELECT {cols} FROM raw_all WHERE {kn} AND _rows > 0)").format(
        cols=_with_keys(decl, [_id(c) for c in measure_names]), kn=_keys_not_null(decl))
    agg = sql.SQL("agg AS (SELECT {cols} FROM {table} WHERE {day} = %(day)s)").format(
        cols=_with_keys(decl, [_id(c) for c in measure_names]), table=_qualified(decl, schema),
        day=_id(decl.day_column))
    differs = []
    for m in decl.measures:
        a, b = sql.Identifier("raw", m.name), sql.Identifier("agg", m.name)
        if m.kind == "weighted_mean":
            differs.append(sql.SQL(
                "NOT (({a} IS NULL AND {b} IS NULL) OR abs({a} - {b}) <= {tol} * greatest(1, abs({a})))"
            ).format(a=a, b=b, tol=sql.Literal(MEAN_TOLERANCE)))
        else:
            differs.append(sql.SQL("{} IS DISTINCT FROM {}").format(a, b))
    on = sql.SQL(" AND ").join(
        [sql.SQL("raw.{k} = agg.{k}").format(k=_id(k)) for k in decl.keys] or [sql.SQL("true")]
    )
    one_side = sql.SQL("raw.{k} IS NULL OR agg.{k} IS NULL").format(k=_id(decl.keys[0])) if decl.keys else (
        sql.SQL("(SELECT count(*) FROM raw) <> (SELECT count(*) FROM agg)"))
    null_key = _null_key_rows(decl)
    return sql.SQL(
        "WITH {raw_all}, {raw}, {agg} SELECT "
        "(SELECT count(*) FROM raw FULL JOIN agg ON {on} WHERE {one_side} OR {differs}) AS mismatched, "
        "(SELECT count(*) FROM agg) AS aggregate_rows, "
        "(SELECT {null_key} FROM raw_all)::bigint AS null_key_rows, "
        "(SELECT coalesce(sum(_non_finite), 0) FROM raw_all)::bigint AS non_finite_values, "
        "(SELECT coalesce(sum(_rows), 0) FROM raw_all)::bigint AS raw_rows, "
        "(SELECT coalesce(sum(_hash), 0) FROM raw_all) AS raw_hash"
    ).format(raw_all=raw_all, raw=raw, agg=agg, on=on, one_side=one_side,
             differs=sql.SQL(" OR ").join(differs) if differs else sql.SQL("false"), null_key=null_key)


def window_rows(decl: RollupDecl, schema: str) -> sql.Composed:
    """The aggregate rows of a window of days (`dagster/row_count` of a materialization)."""
    return sql.SQL("SELECT count(*) FROM {agg} WHERE {day} >= %(first_day)s AND {day} < %(end_day)s").format(
        agg=_qualified(decl, schema), day=_id(decl.day_column))


TABLE_EXISTS = "SELECT to_regclass(%(table)s) IS NOT NULL"


def bind(
    conn: psycopg.Connection, decl: RollupDecl, raw_fingerprint_sql: object, day_statement: str | None = None
) -> BoundSql:
    """Every per-day statement of the declared rollup for this connection; creates its aggregate table in
    our own schema when missing (in the caller's transaction). `day_statement` (a hand-written .sql file
    of the instance) replaces the generated write; `{aggregate}` and `{raw_row_hash}` are put in, and it
    must return replace_day's columns. The reconciliation stays generated from the measures (which must
    then describe what the statement computes), so it judges the hand-written statement independently."""
    schema = own_schema.own_schema_name()
    columns = row_hash.read_columns(conn, decl.raw_table, (decl.id_column, *decl.read_columns))
    types = {c.name: c.type_name for c in columns}
    expression = row_hash.row_hash_sql(columns).as_string(conn)
    agg = _qualified(decl, schema)
    if not conn.execute(TABLE_EXISTS, {"table": agg.as_string(conn)}).fetchone()[0]:
        conn.execute(create_table(decl, schema, types))
    day = _id(decl.day_column)
    oldest, delete_day = (
        sql.SQL("SELECT min({day}) FROM {agg} WHERE {day} < %(cutoff_day)s").format(day=day, agg=agg),
        sql.SQL("DELETE FROM {agg} WHERE {day} = %(day)s").format(day=day, agg=agg),
    )
    return BoundSql(
        replace_day_sql=(
            replace_day(decl, schema, types, expression).as_string(conn) if day_statement is None
            else day_statement.replace("{aggregate}", agg.as_string(conn)).replace("{raw_row_hash}", expression)
        ),
        fingerprint_sql=raw_fingerprint_sql(expression),  # type: ignore[operator]
        reconcile_day_sql=reconcile(decl, schema, types, expression).as_string(conn),
        aggregate_exists_sql=sql.SQL("SELECT 1 FROM {agg} WHERE {day} = %(day)s LIMIT 1").format(agg=agg, day=day),
        delete_day_sql=delete_day,
        # a declared aggregate has no rows from before the ledger: such rows are kept untouched
        raw_below_aggregate_sql=sql.SQL("SELECT true"),
        aggregate_day_sql=(oldest, delete_day),
        more={
            "readback": readback(decl, schema),
            "window_rows": window_rows(decl, schema),
        },
    )
