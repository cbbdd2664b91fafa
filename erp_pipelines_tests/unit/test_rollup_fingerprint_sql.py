"""The fingerprint a rollup writes to the ledger and the one retention compares it with are one expression,
and that expression covers the id and every column the rollup reads (rollups/row_hash.py)."""

from __future__ import annotations

import pytest

from erp_pipelines.rollups import row_hash
from erp_pipelines.rollups import sql as rollup_sql
from erp_pipelines.rollups.registry import ROLLUPS
from erp_pipelines.rollups.row_hash import Column
from erp_pipelines.rollups.spec import RAW_ROW_HASH_MARK

METRIC_COLUMNS = [
    Column("id", "integer", True),
    Column("latencyMs", "integer", False),
    Column("errorRatePct", "double precision", False),
    Column("collected_at", "timestamp without time zone", True),
]


def _text(columns: list[Column]) -> str:
    return row_hash.row_hash_sql(columns).as_string(None)


def test_the_id_is_hashed_last_with_the_other_columns_as_its_seed():
    text = _text(METRIC_COLUMNS)
    assert text.startswith('hashint4extended("id", (')
    for column in METRIC_COLUMNS[1:]:
        assert f'"{column.name}"' in text


def test_each_column_has_its_own_seed_and_a_nullable_one_its_own_null_constant():
    text = _text(METRIC_COLUMNS)
    assert 'coalesce(hashint4extended("latencyMs", 1), -1)' in text
    assert 'coalesce(hashfloat8extended("errorRatePct", 2), -2)' in text
    assert 'timestamp_hash_extended("collected_at", 3)' in text
    assert "coalesce(timestamp_hash_extended" not in text  # NOT NULL: no coalesce


def test_a_type_without_an_entry_and_a_nullable_id_use_the_generic_record_hash():
    text = _text([Column("id", "text", False), Column("state", "order_state", False), Column("day", "date", True)])
    assert text.startswith('hash_record_extended(row("id"), (')
    assert 'hash_record_extended(row("state"), 1)' in text
    assert 'hash_record_extended(row("day"), 2)' in text


def test_a_table_of_only_an_id_still_hashes_it():
    assert _text([Column("id", "uuid", True)]) == 'uuid_hash_extended("id", (0))'


@pytest.mark.parametrize("spec", [s for s in ROLLUPS if s.binder is None], ids=lambda s: s.aggregate_table)
def test_the_write_statement_takes_the_row_hash_where_the_fingerprint_does(spec):
    """The tuned statements (declared rollups generate theirs per connection: rollups/declared_sql.py)."""
    assert spec.hashed_columns == (spec.id_column, *spec.raw_columns)
    assert spec.replace_day_sql.count(RAW_ROW_HASH_MARK) == 1
    assert "{row_hash}" not in spec.fingerprint_sql("h(x)").as_string(None)
    assert "sum(h(x))" in spec.fingerprint_sql("h(x)").as_string(None)
    assert rollup_sql.AGGREGATE_ROW_HASH_MARK not in spec.replace_day_sql


def test_usage_rows_are_hashed_alike_when_written_and_when_read_back():
    assert rollup_sql.USAGE_AGGREGATE_ROW_HASH in rollup_sql.USAGE_DAY_REPLACE
    assert rollup_sql.USAGE_AGGREGATE_ROW_HASH in rollup_sql.USAGE_DAY_READBACK
