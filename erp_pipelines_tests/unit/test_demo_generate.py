"""The demo generator's pure parts: how events are spread over days and cut into load chunks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from erp_pipelines.demo import generate


def test_the_demo_ends_yesterday_utc():
    assert generate.default_end_day() == datetime.now(UTC).date() - timedelta(days=1)


def test_the_incident_is_ten_days_before_the_end_or_mid_range_when_shorter():
    end = date(2026, 3, 31)
    assert generate.incident_day(end, 30) == end - timedelta(days=generate.INCIDENT_DAYS_BEFORE_END)
    assert generate.incident_day(end, 8) == end - timedelta(days=4)


def test_events_sum_exactly_and_weekends_get_less():
    first = date(2026, 3, 2)  # a Monday
    counts = generate._day_counts(first, 14, 10_001)
    assert sum(n for _, n in counts) == 10_001
    assert [d for d, _ in counts] == [first + timedelta(days=i) for i in range(14)]
    weekday, weekend = dict(counts)[date(2026, 3, 4)], dict(counts)[date(2026, 3, 7)]
    assert abs(weekend / weekday - 0.4) < 0.01


def test_chunks_hold_at_most_the_size_keep_day_order_and_lose_nothing():
    day_counts = [(date(2026, 3, 1), 5), (date(2026, 3, 2), 12), (date(2026, 3, 3), 1)]
    chunks = generate._chunks(day_counts, 7)
    assert [sum(n for _, n in chunk) for chunk in chunks] == [7, 7, 4]
    merged: dict[date, int] = {}
    for chunk in chunks:
        for day, n in chunk:
            merged[day] = merged.get(day, 0) + n
    assert merged == dict(day_counts)
    assert [day for chunk in chunks for day, _ in chunk] == sorted(day for chunk in chunks for day, _ in chunk)


def test_the_seed_gives_the_same_setseed_value_in_range():
    assert generate._seed_value(42) == generate._seed_value(42) != generate._seed_value(43)
    assert -1.0 <= generate._seed_value(7) <= 1.0
