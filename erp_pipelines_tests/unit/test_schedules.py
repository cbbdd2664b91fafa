"""The nightly schedule's catch-up: which days a tick asks for after an outage."""

from __future__ import annotations

from datetime import date, timedelta

from erp_pipelines.automation.schedules import MAX_CATCHUP_DAYS, catchup_range

YESTERDAY = date(2026, 3, 10)
FIRST = date(2025, 1, 1)


def test_a_normal_night_asks_for_yesterday_only():
    assert catchup_range(YESTERDAY, [YESTERDAY - timedelta(days=1), None], FIRST) == (YESTERDAY, YESTERDAY)


def test_after_a_five_day_outage_the_tick_asks_for_the_whole_gap():
    newest = YESTERDAY - timedelta(days=6)
    assert catchup_range(YESTERDAY, [newest, None], FIRST) == (YESTERDAY - timedelta(days=5), YESTERDAY)


def test_a_run_in_flight_counts_as_covered():
    materialized, in_flight = YESTERDAY - timedelta(days=6), YESTERDAY - timedelta(days=1)
    assert catchup_range(YESTERDAY, [materialized, in_flight], FIRST) == (YESTERDAY, YESTERDAY)


def test_a_fresh_deployment_asks_for_yesterday_only():
    assert catchup_range(YESTERDAY, [None, None], FIRST) == (YESTERDAY, YESTERDAY)


def test_the_catch_up_reaches_back_at_most_max_catchup_days():
    start, end = catchup_range(YESTERDAY, [YESTERDAY - timedelta(days=400), None], FIRST)
    assert (end - start).days + 1 == MAX_CATCHUP_DAYS and end == YESTERDAY


def test_the_catch_up_never_starts_before_the_first_partition():
    first = YESTERDAY - timedelta(days=3)
    assert catchup_range(YESTERDAY, [YESTERDAY - timedelta(days=20), None], first) == (first, YESTERDAY)


def test_when_yesterday_is_already_done_the_range_is_still_yesterday_alone_never_later():
    assert catchup_range(YESTERDAY, [YESTERDAY, None], FIRST) == (YESTERDAY, YESTERDAY)
