"""Pure parts of the ledger-gated rollups: chunks, 'today', time-zone findings, per-day figures, the spec."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.retention import today
from erp_pipelines.rollups import steps, time_zone
from erp_pipelines.rollups.registry import ROLLUPS, rollup_named


def test_a_backfill_is_cut_into_chunks_of_days_per_transaction():
    days = [date(2025, 1, 1) + timedelta(days=i) for i in range(7)]
    assert [len(c) for c in steps.chunks(days, 3)] == [3, 3, 1]
    assert [c[0] for c in steps.chunks(days, 1)] == days


def test_today_may_be_replayed_but_never_lie_in_the_future():
    assert today.guard_today(None) == datetime.now(UTC).date()
    assert today.guard_today("2025-06-01") == date(2025, 6, 1)
    with pytest.raises(ErpPipelinesError, match="in the future"):
        today.guard_today(str(datetime.now(UTC).date() + timedelta(days=2)))
    with pytest.raises(ErpPipelinesError, match="not a date"):
        today.guard_today("tomorrow")


@pytest.mark.parametrize("tz", ["UTC", "Etc/UTC", "GMT", "utc", "Zulu"])
def test_utc_under_any_of_its_names_is_fine(tz):
    assert time_zone.TimeZoneFindings(tz, [], 0).problems == []


def test_a_non_utc_database_or_role_or_future_rows_are_named():
    findings = time_zone.TimeZoneFindings(
        "America/New_York", [("app", "erp", "Europe/Paris"), ("ops", "erp", "'UTC'")], 3
    )
    problems = findings.problems
    assert any("America/New_York" in p for p in problems)
    assert any("role app" in p and "Europe/Paris" in p for p in problems)
    assert not any("role ops" in p for p in problems)
    assert any("3 raw row(s)" in p for p in problems)
    assert time_zone.TimeZoneFindings("", [], 0).problems == []  # set by our own connection options: not judged


def test_a_day_not_rolled_up_reports_zero_counts_and_why_it_was_kept():
    kept = steps.DayResult("client_daily_usage", date(2025, 1, 1), steps.DayOutcome.PRUNED_KEPT, raw_rows=4,
                           late_rows=4)
    figures = steps.day_figures(kept, "events_read", ("null_module_events",))
    assert figures.figures["null_module_events"] == 0 and figures.figures["late_rows"] == 4
    assert figures.figures["events_read"] == 4 and "pruned" in (figures.kept or "")
    check = steps.reconciliation_day(kept)
    assert check.passed  # a pruned day is not a reconciliation failure


def test_every_rollup_declares_stable_fields_and_reads_its_own_columns():
    assert [s.aggregate_table for s in ROLLUPS] == [
        "system_metric_daily", "client_daily_usage", "rate_limit_violations_daily"
    ]
    for spec in ROLLUPS:
        assert spec.asset_key == spec.aggregate_table
        assert spec.lock_key == f"erp_pipelines:{spec.aggregate_table}"
        assert spec.ts_column in spec.raw_columns and spec.id_column == "id"
        assert rollup_named(spec.aggregate_table) is spec
        assert spec.reconciliation_check in spec.check_names
