"""The `make run` summary: designed demo findings apart from real failures, standing failures counted,
no doubled step prefix (erp_pipelines/run_summary.py)."""

from erp_pipelines.run_summary import (
    CheckLine,
    check_count,
    failure_sections,
    named,
    split_designed,
    with_standing,
    without_step_prefix,
)

NULL_MODULE = "client_daily_usage.no_events_without_module"
INCIDENT = "system_metric_daily.health_thresholds"


def demo_checks() -> list[CheckLine]:
    days = [f"2026-11-{d:02d}" for d in range(1, 31)]
    return ([CheckLine(NULL_MODULE, d, False, "WARN", f"{d}: 12 events without a module") for d in days]
            + [CheckLine(INCIDENT, "2026-11-19", False, "ERROR", "latency 1941 ms > critical 1000")]
            + [CheckLine(INCIDENT, d, True, "ERROR", "") for d in days if d != "2026-11-19"])


def test_the_healthy_demo_has_no_real_failure_only_what_it_was_built_to_show():
    checks = demo_checks()
    shown, real = split_designed(checks)
    assert (len(shown), real) == (31, [])
    assert check_count(checks) == "29 passed, 0 real failure(s), 31 failing as the demo was built to show"
    sections = failure_sections(checks)
    assert sections[0] == "as the demo was built to show (not faults):"
    assert any("incident day" in line and "[2026-11-19]" in line for line in sections)
    assert any("on 30 days (2026-11-01..2026-11-30)" in line and "without a module" in line for line in sections)


def test_a_real_failure_is_listed_first_and_counted_as_real():
    checks = [*demo_checks(), CheckLine("erp_schema.rows_preserved", None, False, "ERROR", "users lowered")]
    assert "1 real failure(s)" in check_count(checks)
    sections = failure_sections(checks)
    assert sections[:2] == ["real failures:", "  check erp_schema.rows_preserved: FAILED (ERROR): users lowered"]


def test_a_no_op_run_still_reports_the_incident_error_that_stands():
    standing = [CheckLine(INCIDENT, "2026-11-19", False, "ERROR", "latency 1941 ms", standing=True)]
    checks = with_standing([CheckLine("retention_pruning.x", None, True, "WARN", "")], standing)
    assert check_count(checks) == ("1 passed, 0 real failure(s), 1 failing as the demo was built to show "
                                   "(1 standing from earlier runs)")
    assert "standing since an earlier run" in failure_sections(checks)[1]


def test_a_result_of_this_run_replaces_the_standing_one_of_the_same_day():
    standing = [CheckLine(INCIDENT, "2026-11-19", False, "ERROR", "old", standing=True)]
    fresh = [CheckLine(INCIDENT, "2026-11-19", True, "ERROR", "")]
    assert with_standing(fresh, standing) == fresh


def test_progress_lines_do_not_repeat_the_step_name():
    assert without_step_prefix("client_daily_usage", "client_daily_usage: 2026-11-01 done") == "2026-11-01 done"
    assert without_step_prefix("client_daily_usage", "2026-11-01 done") == "2026-11-01 done"


def test_drift_items_and_added_tables_are_named():
    assert named(["a", "b"]) == "a, b"
    assert named([str(i) for i in range(14)], limit=12).endswith("and 2 more")
