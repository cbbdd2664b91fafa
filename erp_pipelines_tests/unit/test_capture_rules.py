"""Pure rules of change capture: trigger names, which days the late-data sensor asks for, retry backoff,
the lookback setting. No database, no Dagster instance."""

from __future__ import annotations

from datetime import date

import pytest

from erp_pipelines.automation.schedules import DEFAULT_LOOKBACK_DAYS, LOOKBACK_ENV, lookback_days
from erp_pipelines.capture.log import MarkedDay, parse_day
from erp_pipelines.capture.refresh import RefreshHistory, days_to_refresh, plan_refreshes, retry_delay_s
from erp_pipelines.capture.targets import CHANGE_CAPTURE_ENV, CaptureTarget, change_capture_enabled
from erp_pipelines.capture.triggers import MAX_IDENTIFIER, Operation, capture_name, day_expression
from erp_pipelines.errors import ErpPipelinesError

TARGETS = (
    CaptureTarget("client_usage_events", "occurred_at", ("client_daily_usage",)),
    CaptureTarget("system_metric_samples", "collected_at", ("system_metric_daily",)),
)


def mark(table: str, day: str) -> MarkedDay:
    return MarkedDay(table, date.fromisoformat(day))


def test_trigger_names_carry_our_prefix_and_fit_postgres_identifiers():
    assert capture_name("client_usage_events", Operation.UPDATE) == "erp_pipelines_capture_client_usage_events_update"
    long = capture_name("a_very_long_raw_table_name_that_the_erp_might_well_use_somewhere", Operation.DELETE)
    assert long.startswith("erp_pipelines_capture_") and long.endswith("_delete")
    assert len(long) <= MAX_IDENTIFIER
    assert long != capture_name("a_very_long_raw_table_name_that_the_erp_might_well_use_elsewhere", Operation.DELETE)


def test_a_timestamptz_column_is_marked_by_its_utc_day_and_text_is_refused():
    assert "AT TIME ZONE 'UTC'" in day_expression("timestamp with time zone", "x")
    with pytest.raises(ErpPipelinesError, match="no UTC day"):
        day_expression("text", "column t.c")


def test_only_materialized_complete_days_are_asked_for_with_the_rollups_their_table_feeds():
    marked = [
        mark("client_usage_events", "2025-03-01"),
        mark("system_metric_samples", "2025-03-01"),
        mark("system_metric_samples", "2025-03-02"),  # never materialized: the schedule's catch-up
        mark("client_usage_events", "2024-12-31"),  # before the first partition
        mark("client_usage_events", "2025-03-10"),  # today: not a complete partition yet
    ]
    materialized = {
        "client_daily_usage": {"2025-03-01", "2024-12-31", "2025-03-10"},
        "system_metric_daily": {"2025-03-01"},
    }
    assert days_to_refresh(marked, TARGETS, materialized, "2025-01-01", "2025-03-09") == {
        "2025-03-01": ("client_daily_usage", "system_metric_daily")
    }
    assert days_to_refresh(marked, TARGETS, materialized, "2025-01-01", None) == {}


def test_a_day_is_not_asked_for_while_its_refresh_is_in_flight():
    wanted = {"2025-03-01": ("client_daily_usage",), "2025-03-02": ("client_daily_usage",)}
    history = {"2025-03-01": RefreshHistory(in_flight=True, last_run_id="abcdef0123")}
    requests, waiting = plan_refreshes(wanted, history, now=1000.0, limit=10)
    assert [r.day for r in requests] == ["2025-03-02"]
    assert "queued or running" in waiting["2025-03-01"]


def test_marks_left_after_a_run_ask_again_under_a_new_key():
    wanted = {"2025-03-01": ("client_daily_usage",)}
    first, _ = plan_refreshes(wanted, {}, now=1000.0, limit=10)
    after_success, _ = plan_refreshes(wanted, {"2025-03-01": RefreshHistory(last_run_id="run1run1xx")}, 1000.0, 10)
    failed = RefreshHistory(last_run_id="run2run2xx", consecutive_failures=1, last_failure_end=999.0)
    after_failure, _ = plan_refreshes(wanted, {"2025-03-01": failed}, 1000.0, 10)
    keys = [first[0].run_key, after_success[0].run_key, after_failure[0].run_key]
    assert len(set(keys)) == 3
    assert after_failure[0].attempt == 2
    # the same state asks under the same key (a retried tick does not ask twice)
    assert plan_refreshes(wanted, {"2025-03-01": failed}, 1001.0, 10)[0][0].run_key == keys[2]


def test_repeated_failures_back_off_instead_of_flooding():
    assert [retry_delay_s(n) for n in range(7)] == [0, 0, 300, 600, 1200, 2400, 3600]
    wanted = {"2025-03-01": ("client_daily_usage",)}
    twice = RefreshHistory(last_run_id="r", consecutive_failures=2, last_failure_end=1000.0)
    requests, waiting = plan_refreshes(wanted, {"2025-03-01": twice}, now=1100.0, limit=10)
    assert requests == [] and "2 refreshes failed" in waiting["2025-03-01"]
    assert plan_refreshes(wanted, {"2025-03-01": twice}, now=1300.0, limit=10)[0][0].attempt == 3


def test_a_tick_asks_for_at_most_its_limit_and_leaves_the_rest_marked():
    wanted = {f"2025-03-{d:02d}": ("client_daily_usage",) for d in range(1, 6)}
    requests, waiting = plan_refreshes(wanted, {}, now=0.0, limit=2)
    assert [r.day for r in requests] == ["2025-03-01", "2025-03-02"] and len(waiting) == 3


def test_lookback_defaults_to_two_days_and_refuses_bad_values(monkeypatch):
    monkeypatch.delenv(LOOKBACK_ENV, raising=False)
    assert lookback_days() == DEFAULT_LOOKBACK_DAYS == 2
    monkeypatch.setenv(LOOKBACK_ENV, "0")
    assert lookback_days() == 0
    for bad in ("-1", "two", "45"):
        monkeypatch.setenv(LOOKBACK_ENV, bad)
        with pytest.raises(ErpPipelinesError, match=LOOKBACK_ENV):
            lookback_days()


def test_change_capture_is_on_unless_switched_off(monkeypatch):
    monkeypatch.delenv(CHANGE_CAPTURE_ENV, raising=False)
    assert change_capture_enabled() is True
    monkeypatch.setenv(CHANGE_CAPTURE_ENV, "OFF")
    assert change_capture_enabled() is False
    assert change_capture_enabled(True) is True
    monkeypatch.setenv(CHANGE_CAPTURE_ENV, "maybe")
    with pytest.raises(ErpPipelinesError, match="neither on nor off"):
        change_capture_enabled()


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("2026-03-01", (date(2026, 3, 1), False)),
        ("20000-01-01", (date.max, True)),
        ("infinity", (date.max, True)),
        ("-infinity", (date.min, True)),
        ("4713-01-01 BC", (date.min, True)),
    ],
)
def test_marked_days_out_of_pythons_range_are_clamped_not_fatal(text, parsed):
    assert parse_day(text) == parsed


def test_clamped_marks_are_never_refreshed():
    clamped = [MarkedDay("client_usage_events", date.max, True), MarkedDay("client_usage_events", date.min, True)]
    materialized = {"client_daily_usage": {str(date.max), str(date.min)}}
    assert days_to_refresh(clamped, TARGETS, materialized, "2026-01-01", "2026-12-01") == {}
