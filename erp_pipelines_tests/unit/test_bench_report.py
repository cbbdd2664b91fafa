"""bench/'s report: every measurement beside its floor, from the numbers of a run (no database)."""

from __future__ import annotations

import json

from bench import report
from bench.common import Row, measure, paired, ratio_row
from bench.measurements import MEASUREMENTS
from erp_pipelines.settings import PROJECT_ROOT

RESULTS = PROJECT_ROOT / "bench" / "results.json"


def test_a_ratio_row_is_met_only_within_its_limit():
    assert ratio_row("x", 2.0, 1.0, "floor", 2, "<= 2x") == Row("x", 2.0, 2.0, "floor", "<= 2x", True)
    assert ratio_row("x", 3.0, 1.0, "floor", 2, "<= 2x").met is False
    assert ratio_row("x", 3.0, 0.0, "floor", 2, "<= 2x").met is False  # no floor, no claim


def test_measure_runs_the_reset_before_every_run_and_keeps_the_median():
    calls: list[str] = []
    timing = measure(lambda: calls.append("run"), repeat=3, reset=lambda: calls.append("reset"))
    assert calls == ["reset", "run"] * 4  # one warm-up, three timed
    assert len(timing.runs) == 3 and timing.median in timing.runs


def test_a_step_and_its_floor_are_timed_alternately():
    calls: list[str] = []
    floor, step = paired(lambda: calls.append("floor"), lambda: calls.append("step"), rounds=2,
                         reset=lambda: calls.append("reset"))
    assert calls == ["floor", "reset", "step"] * 3  # one warm-up round, two timed
    assert len(floor.runs) == len(step.runs) == 2


def test_the_report_rebuilds_the_stored_table_from_the_stored_numbers():
    stored = json.loads(RESULTS.read_text())
    rows = [row.__dict__ for row in report.build_rows(stored)]
    assert rows == stored["rows"]


def test_a_failed_measurement_leaves_only_its_note():
    stored = json.loads(RESULTS.read_text())
    for measurement in MEASUREMENTS:
        without = {k: v for k, v in stored.items() if k != measurement.key}
        assert measurement.rows(without) == [] and measurement.details(without) == []


def test_the_side_benches_figures_are_summarized_when_their_json_is_there(tmp_path):
    from bench import companions

    assert companions.lines(tmp_path) == []
    ledger = {"days": 30, "events_per_day": 100_000, "floor_scan_serial": 0.02, "usage_step_day": 0.15,
              "floor_samples_count": 0.004, "metric_step_day": 0.03, "backfill_chunk1_longest_xact": 0.3,
              "backfill_chunk7_longest_xact": 1.5, "retention_rows": 10, "retention_longest_statement": 0.2,
              "retention_total": 3.0, "one_delete": 2.0}
    (tmp_path / companions.LEDGER_30D).write_text(json.dumps(ledger))
    text = "\n".join(companions.lines(tmp_path))
    assert "7.50x serial scan | <= 10x | yes" in text
    assert "7.50x count(*) | <= 6x | **NO**" in text
    assert "days_per_transaction=7" in text and "1.50x one DELETE" in text
