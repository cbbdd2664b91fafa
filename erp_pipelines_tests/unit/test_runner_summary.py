"""The `make run` summary's failed-check lines: one line per check, whatever the number of failing days."""

from erp_pipelines.runner import CheckLine, failure_lines


def line(day: str | None, passed: bool, severity: str = "WARN", why: str = "x") -> CheckLine:
    return CheckLine("client_daily_usage.no_events_without_module", day, passed, severity, why)


def test_a_check_failing_on_one_day_names_the_day_and_why():
    checks = [
        CheckLine("system_metric_daily.health_thresholds", "2026-11-19", False, "ERROR", "latency 1941"),
        CheckLine("system_metric_daily.health_thresholds", "2026-11-20", True, "ERROR", ""),
    ]
    assert failure_lines(checks) == ["system_metric_daily.health_thresholds [2026-11-19]: FAILED (ERROR): latency 1941"]


def test_a_check_failing_on_every_day_of_a_backfill_is_one_line_with_the_count_and_range():
    checks = [line(f"2026-11-{d:02d}", False, why=f"{d} events") for d in range(30, 0, -1)] + [line(None, True)]
    assert failure_lines(checks) == [
        "client_daily_usage.no_events_without_module: FAILED (WARN) on 30 days (2026-11-01..2026-11-30); "
        "first: 1 events"
    ]


def test_an_unpartitioned_failure_has_no_day():
    assert failure_lines([line(None, False, "ERROR", "rows lowered")]) == [
        "client_daily_usage.no_events_without_module: FAILED (ERROR): rows lowered"
    ]
