"""partitions.py: a partition is one UTC day, whatever time zone a datetime comes in."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import dagster as dg
import pytest

from erp_pipelines import partitions
from erp_pipelines.errors import ErpPipelinesError


def test_day_bounds_are_the_naive_utc_midnights_around_the_day():
    assert partitions.day_bounds(date(2025, 3, 1)) == (datetime(2025, 3, 1), datetime(2025, 3, 2))
    assert partitions.day_bounds(date(2024, 12, 31))[1] == datetime(2025, 1, 1)


def test_a_time_window_of_three_days_yields_those_three_days():
    window = dg.TimeWindow(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 4, tzinfo=UTC))
    assert list(partitions.days_in_window(window)) == [date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3)]


def test_a_window_given_in_another_time_zone_is_read_in_utc():
    plus_two = timezone(timedelta(hours=2))
    window = dg.TimeWindow(datetime(2025, 3, 1, 2, tzinfo=plus_two), datetime(2025, 3, 2, 2, tzinfo=plus_two))
    assert list(partitions.days_in_window(window)) == [date(2025, 3, 1)]


def test_to_naive_utc_converts_aware_times_and_keeps_naive_ones():
    assert partitions.to_naive_utc(datetime(2025, 3, 1, 1, tzinfo=timezone(timedelta(hours=2)))) == datetime(
        2025, 2, 28, 23
    )
    assert partitions.to_naive_utc(datetime(2025, 3, 1, 1)) == datetime(2025, 3, 1, 1)


def test_partition_keys_are_iso_days():
    assert partitions.partition_day("2025-03-01") == date(2025, 3, 1)


def test_the_partitions_start_at_the_start_date_in_utc():
    daily = partitions.daily_partitions("2025-02-01")
    assert daily.get_first_partition_key() == "2025-02-01"
    assert daily.timezone == "UTC"


def test_the_start_date_comes_from_erp_rollup_start_date(monkeypatch):
    monkeypatch.setenv("ERP_ROLLUP_START_DATE", " 2025-06-01 ")
    assert partitions.rollup_start_date() == "2025-06-01"
    monkeypatch.delenv("ERP_ROLLUP_START_DATE")
    assert partitions.rollup_start_date() == partitions.DEFAULT_START_DATE


def test_a_start_date_that_is_not_a_date_names_the_setting(monkeypatch):
    monkeypatch.setenv("ERP_ROLLUP_START_DATE", "01/06/2025")
    with pytest.raises(ErpPipelinesError, match="ERP_ROLLUP_START_DATE"):
        partitions.rollup_start_date()
