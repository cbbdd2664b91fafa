"""The fingerprint a rollup writes to the ledger and the one retention compares it with are one expression."""

from __future__ import annotations

import re

import pytest

from erp_pipelines.rollups import sql as rollup_sql
from erp_pipelines.rollups.registry import ROLLUPS


@pytest.mark.parametrize("spec", ROLLUPS, ids=lambda s: s.aggregate_table)
def test_the_row_hash_covers_the_id_and_every_column_the_rollup_reads(spec):
    inside = re.fullmatch(r"hash_record_extended\(row\((.*)\), 0\)", spec.raw_row_hash)
    assert inside, spec.raw_row_hash
    columns = [c.strip().strip('"') for c in inside.group(1).split(",")]
    assert columns == [spec.id_column, *spec.raw_columns]


@pytest.mark.parametrize("spec", ROLLUPS, ids=lambda s: s.aggregate_table)
def test_the_write_and_retention_sum_the_same_row_hash(spec):
    assert spec.raw_row_hash in spec.replace_day_sql
    assert spec.raw_row_hash in spec.fingerprint_sql.as_string(None)
    assert rollup_sql.RAW_ROW_HASH_MARK not in spec.replace_day_sql
    assert rollup_sql.AGGREGATE_ROW_HASH_MARK not in spec.replace_day_sql


def test_usage_rows_are_hashed_alike_when_written_and_when_read_back():
    assert rollup_sql.USAGE_AGGREGATE_ROW_HASH in rollup_sql.USAGE_DAY_REPLACE
    assert rollup_sql.USAGE_AGGREGATE_ROW_HASH in rollup_sql.USAGE_DAY_READBACK
