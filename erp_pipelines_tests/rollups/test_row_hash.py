"""The per-row hash of the fingerprint (rollups/row_hash.py) on a real database: its functions are the ones
PostgreSQL's own hash operator classes use, and any single change to any hashed column of any row, NULLs
included, changes the day's fingerprint whatever the id type (integer, bigint, uuid, text)."""

from __future__ import annotations

import uuid
from datetime import datetime

import psycopg
import pytest

from erp_pipelines.rollups import row_hash

# The default hash operator class's extended hash function (pg_amproc number 2) of a type.
DEFAULT_EXTENDED_HASH = """
SELECT p.amproc::regproc::text
FROM pg_opclass AS oc
JOIN pg_am AS am ON am.oid = oc.opcmethod AND am.amname = 'hash'
JOIN pg_amproc AS p ON p.amprocfamily = oc.opcfamily AND p.amproclefttype = oc.opcintype
     AND p.amprocrighttype = oc.opcintype AND p.amprocnum = 2
WHERE oc.opcdefault AND oc.opcintype = %s::regtype
"""
SHARES_OPCLASS = {"character varying": "text"}  # varchar has no operator class of its own

DAY = datetime(2026, 3, 4)
ID_TYPES = {
    "integer": ("integer GENERATED ALWAYS AS IDENTITY", None),
    "bigint": ("bigint GENERATED ALWAYS AS IDENTITY", None),
    "uuid": ("uuid", lambda n: uuid.UUID(int=n + 1)),
    "text": ("text", lambda n: f"c{n:024d}"),
}
# (column, a value it holds, another value): every hashed column gets changed, and set NULL where nullable
CHANGES = [
    ("amount", 5, 6),
    ("ratio", 0.5, 0.25),
    ("label", "view", "View"),
    ("owner", uuid.UUID(int=7), uuid.UUID(int=8)),
    ("total", 10, 11),
    ("at", DAY.replace(hour=1), DAY.replace(hour=2)),
]


@pytest.mark.parametrize("type_name", sorted(row_hash.HASH_FUNCTIONS))
def test_each_function_is_the_types_own_default_hash_function(conn, type_name):
    found = conn.execute(DEFAULT_EXTENDED_HASH, (SHARES_OPCLASS.get(type_name, type_name),)).fetchone()
    assert found is not None, type_name
    assert found[0] == row_hash.HASH_FUNCTIONS[type_name]


def _table(conn: psycopg.Connection, id_type: str) -> None:
    column, _ = ID_TYPES[id_type]
    conn.execute(
        f"CREATE TABLE raw (id {column} PRIMARY KEY, amount integer, ratio double precision, "  # noqa: S608 - test DDL
        "label varchar(20), owner uuid, total bigint NOT NULL, at timestamp(6) NOT NULL)"
    )


def _fingerprint(conn: psycopg.Connection) -> tuple[int, object]:
    names = ("id", "amount", "ratio", "label", "owner", "total", "at")
    expression = row_hash.for_table(conn, "raw", names)
    return conn.execute(
        f"SELECT count(*), coalesce(sum({expression}), 0) FROM raw WHERE at >= %s",  # noqa: S608 - built from the catalog
        (DAY,),
    ).fetchone()


@pytest.mark.parametrize("id_type", sorted(ID_TYPES))
def test_any_single_change_of_any_column_changes_the_fingerprint(conn, id_type):
    _table(conn, id_type)
    make_id = ID_TYPES[id_type][1]
    for n in range(3):
        values = [c[1] for c in CHANGES]
        if make_id is None:
            conn.execute("INSERT INTO raw (amount, ratio, label, owner, total, at) VALUES (%s, %s, %s, %s, %s, %s)",
                         values)
        else:
            conn.execute("INSERT INTO raw (id, amount, ratio, label, owner, total, at) "
                         "VALUES (%s, %s, %s, %s, %s, %s, %s)", [make_id(n), *values])
    conn.execute("UPDATE raw SET amount = NULL, ratio = NULL, label = NULL, owner = NULL WHERE id = "
                 "(SELECT id FROM raw ORDER BY id DESC LIMIT 1)")  # one row with NULLs from the start
    before = _fingerprint(conn)
    seen = {before[1]}
    target = conn.execute("SELECT id FROM raw ORDER BY id LIMIT 1").fetchone()[0]
    for column, value, other in CHANGES:
        nullable = column not in ("total", "at")
        for new in [other, *([None] if nullable else [])]:
            conn.execute(f'UPDATE raw SET "{column}" = %s WHERE id = %s', (new, target))  # noqa: S608 - test
            changed = _fingerprint(conn)
            assert changed[0] == before[0]
            assert changed[1] not in seen, (column, new)
            seen.add(changed[1])
        conn.execute(f'UPDATE raw SET "{column}" = %s WHERE id = %s', (value, target))  # noqa: S608 - test
        assert _fingerprint(conn) == before, column
    # a NULL becoming a value in the row that started with NULLs
    conn.execute("UPDATE raw SET amount = 5 WHERE id = (SELECT id FROM raw ORDER BY id DESC LIMIT 1)")
    assert _fingerprint(conn)[1] not in seen


def test_swapping_values_between_two_rows_changes_the_fingerprint(conn):
    _table(conn, "integer")
    for amount in (1, 2):
        conn.execute("INSERT INTO raw (amount, total, at) VALUES (%s, %s, %s)", (amount, 10 * amount, DAY))
    before = _fingerprint(conn)
    conn.execute("UPDATE raw SET amount = 3 - amount")
    assert _fingerprint(conn) != before


def test_a_missing_column_names_the_table_and_column(conn):
    from erp_pipelines.errors import ErpPipelinesError

    _table(conn, "integer")
    with pytest.raises(ErpPipelinesError) as caught:
        row_hash.for_table(conn, "raw", ("id", "amount", "gone"))
    assert "raw" in str(caught.value) and "gone" in str(caught.value)
    with pytest.raises(ErpPipelinesError, match="table itself is missing"):
        row_hash.for_table(conn, "nowhere", ("id",))
