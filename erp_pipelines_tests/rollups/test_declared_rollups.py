"""Declared rollups (rollups/component.py, rollups/declared.py) on a real PostgreSQL and real Dagster: a toy
instance added in a copy of the defs folder, the demo's third rollup, NaN and NULL keys.
"""

from __future__ import annotations

import math
from datetime import timedelta

import dagster as dg
import pytest

from erp_pipelines.resources import ErpDatabase
from erp_pipelines.rollups.registry import ROLLUP_ASSETS, rollup_named
from erp_pipelines_tests.support.erp_data import set_health_config
from erp_pipelines_tests.support.rollups import ago, at
from erp_pipelines_tests.support.toy_rollup import TOY_TABLE_DDL, run_toy_flow, write_toy_defs

RATE_LIMIT = next(a for a in ROLLUP_ASSETS if a.key.to_user_string() == "rate_limit_violations_daily")


def test_a_toy_rollup_declared_in_one_yaml_file_is_loaded_rolled_up_captured_reconciled_pruned_and_granted(
    erp_tables, erp_url, tmp_path
):
    conn = erp_tables
    set_health_config(conn, metrics_days=7)
    conn.execute(TOY_TABLE_DDL)
    clean, dirty = ago(20), ago(19)
    rows = [
        ("a", 1.5, f"{clean} 00:30+00"),
        ("a", 2.5, f"{clean + timedelta(days=1)} 04:30+05"),  # 23:30 UTC on `clean`
        ("b", 10.0, f"{clean} 12:00+00"),
        ("a", 4.0, f"{dirty} 09:00+00"),
        ("a", float("nan"), f"{dirty} 10:00+00"),  # kept out of the sum and mean, counted
        (None, 7.0, f"{dirty} 11:00+00"),  # a NULL key: in no aggregate row, so never pruned
        ("late", 1.0, f"{dirty} 23:59:59-01"),  # 00:59:59 UTC the day after: not this day's
    ]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO toy_events (kind, amount, seen_at) VALUES (%s, %s, %s)", rows)

    seen = run_toy_flow(write_toy_defs(tmp_path), erp_url, clean, dirty, today=ago(0))

    assert {"toy_events", "toy_events_daily", "retention_pruning"} <= set(seen["asset_keys"])
    assert seen["checks"] == sorted([
        "rows_match_raw", "no_rows_without_key", "no_non_finite_values", "raw_times_are_utc",
        "no_late_rows_for_pruned_days", "capture_triggers_enabled",
    ])
    assert seen["grants"] == {
        "rollup": {"toy_events": "SELECT", "toy_events_daily": "SELECT, INSERT, UPDATE, DELETE"},
        "retention": {"toy_events": "SELECT, DELETE", "toy_events_daily": "SELECT, DELETE"},
    }
    # the printed grants: the raw table in the ERP's schema; the aggregate is made in our schema by the
    # rollup's first run, hence CREATE there rather than a GRANT on a table that does not exist yet
    assert 'GRANT SELECT, DELETE ON "public"."toy_events" TO "toy_role";' in seen["grant_script"]
    assert any(line.startswith('GRANT USAGE, CREATE ON SCHEMA "erp_pipelines" TO "toy_role";')
               for line in seen["grant_script"])
    assert not any("toy_events_daily" in line for line in seen["grant_script"])
    assert any("toy_events" in name for name in seen["capture"])
    assert seen["rows"] == [
        [str(clean), "a", 2, 4.0, 2.0],
        [str(clean), "b", 1, 10.0, 10.0],
        [str(dirty), "a", 2, 4.0, 4.0],
    ]
    assert seen[f"checks_{clean}"]["rows_match_raw"] and seen[f"checks_{dirty}"]["rows_match_raw"]
    assert seen[f"checks_{dirty}"]["no_non_finite_values"] is False  # WARN, not a mismatch
    assert seen[f"checks_{dirty}"]["no_rows_without_key"] is False
    assert seen[f"metadata_{dirty}"]["non_finite_values"] == 1 and seen[f"metadata_{dirty}"]["null_key_rows"] == 1
    assert seen["marked"] >= 1 and seen["marked_after_rollup"] == 0
    assert seen["pruned"] == [str(clean)]
    assert seen["raw_left"] == {str(clean): 0, str(dirty): 3}  # the NULL-key day is kept whole
    assert seen["retention"]["deleted_toy_events"] == 4
    assert "NULL key" in seen["retention"]["skipped_days"]["toy_events"][str(dirty)]


def _violations(conn, day, rows):
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO rate_limit_violations (ip_address, endpoint, limit_type, request_count, window_start, "
            "created_at) VALUES (%s, %s, %s, %s, %s, %s)",
            [(ip, ep, lt, n, at(day, h), at(day, h, 5)) for ip, ep, lt, n, h in rows],
        )


def test_the_demo_third_rollup_aggregates_rate_limit_violations_into_our_own_schema(erp_tables, resources, instance):
    conn = erp_tables
    day = ago(3)
    _violations(conn, day, [
        ("10.0.0.1", "/api/login", "ip", 5, 1), ("10.0.0.1", "/api/login", "ip", 7, 2),
        ("10.0.0.2", "/api/login", "ip", 1, 3), ("10.0.0.2", "/api/orders", "user", 30, 4),
    ])
    _violations(conn, day + timedelta(days=1), [("10.0.0.9", "/api/login", "ip", 2, 0)])
    result = dg.materialize([RATE_LIMIT], partition_key=str(day), resources=resources, instance=instance,
                            run_config={"ops": {RATE_LIMIT.op.name: {"config": {"recompute_check": True}}}})
    assert result.success
    rows = conn.execute(
        "SELECT day, endpoint, limit_type, violations, requests, distinct_ips "
        "FROM erp_pipelines.rate_limit_violations_daily ORDER BY endpoint"
    ).fetchall()
    assert [tuple(r[1:]) for r in rows] == [("/api/login", "ip", 3, 13, 2), ("/api/orders", "user", 1, 30, 1)]
    assert {r[0] for r in rows} == {day}
    assert conn.execute("SELECT to_regclass('public.rate_limit_violations_daily')").fetchone()[0] is None
    md = result.asset_materializations_for_node(RATE_LIMIT.op.name)[0].metadata
    assert md["raw_rows_read"].value == 4 and md["violations"].value == 4 and md["requests"].value == 43
    assert all(e.passed for e in result.get_asset_check_evaluations() if e.check_name == "rows_match_raw")
    again = dg.materialize([RATE_LIMIT], partition_key=str(day), resources=resources, instance=instance)
    assert again.asset_materializations_for_node(RATE_LIMIT.op.name)[0].metadata["rows_written"].value == 0


def test_a_declared_reconciliation_catches_a_stored_row_the_write_did_not_compute(erp_tables, erp_db, resources,
                                                                                   instance):
    """The independent recomputation (another formula shape) sees an aggregate edited behind our back."""
    from erp_pipelines.dbwork import erp_connection

    conn = erp_tables
    day = ago(3)
    _violations(conn, day, [("10.0.0.1", "/api/login", "ip", 5, 1), ("10.0.0.2", "/api/login", "ip", 6, 2)])
    assert dg.materialize([RATE_LIMIT], partition_key=str(day), resources=resources, instance=instance).success
    spec = rollup_named("rate_limit_violations_daily")
    params = {"day": day, "day_start": at(day), "day_end": at(day + timedelta(days=1))}
    with erp_connection(erp_db, "test", {}) as c:
        assert spec.read_reconciliation(c, spec.bind(c), params).mismatch is None
    conn.execute("UPDATE erp_pipelines.rate_limit_violations_daily SET distinct_ips = 1")
    with erp_connection(erp_db, "test", {}) as c:
        assert "1 key group(s) differ" in spec.read_reconciliation(c, spec.bind(c), params).mismatch


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
def test_a_non_finite_error_rate_sample_does_not_fail_the_metric_reconciliation(erp_tables, resources, instance, bad):
    from erp_pipelines.rollups.assets import system_metric_daily
    from erp_pipelines_tests.support.erp_data import insert_samples

    conn = erp_tables
    day = ago(3)
    insert_samples(conn, [(100, 1.0, 0, 0, at(day, 1)), (200, bad, 0, 0, at(day, 2)), (300, 3.0, 0, 0, at(day, 3))])
    result = dg.materialize([system_metric_daily], partition_key=str(day), resources=resources, instance=instance,
                            run_config={"ops": {"system_metric_daily": {"config": {"recompute_check": True}}}})
    assert result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["totals_match_samples"].passed
    rate = conn.execute('SELECT "avgErrorRatePct" FROM system_metric_daily').fetchone()[0]
    assert math.isfinite(rate) and rate == 2.0  # the mean of the finite rates: the bad one is kept out
    md = result.asset_materializations_for_node("system_metric_daily")[0].metadata
    assert md["non_finite_values"].value == 1


def test_a_hand_written_day_statement_next_to_the_yaml_replaces_the_generated_one(erp_tables, resources, instance,
                                                                                   tmp_path):
    """The escape hatch: `day_statement: day.sql` in the instance's folder is the write that runs (here the
    generated text with a marker), and the generated reconciliation still judges it."""
    from erp_pipelines.rollups import declared_sql
    from erp_pipelines.rollups.component import component_tree, defs_module_at, load_rollups

    conn = erp_tables
    folder = tmp_path / "hatch_defs"
    (folder / "rollups" / "hatch").mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "rollups" / "hatch" / "defs.yaml").write_text(
        "type: erp_pipelines.rollups.component.DailyRollup\nattributes:\n"
        "  aggregate_table: hatch_daily\n  description: hand-written\n  raw_table: rate_limit_violations\n"
        "  time_column: created_at\n  keys: [endpoint]\n  measures:\n    - {name: violations, kind: count}\n"
        "  day_statement: day.sql\n"
    )
    (hatch,) = load_rollups(component_tree(defs_module_at(folder)))
    types = {"endpoint": "character varying"}
    text = declared_sql.replace_day(hatch.declaration(), "SCHEMA", types, "{raw_row_hash}").as_string(conn)
    (folder / "rollups" / "hatch" / "day.sql").write_text(
        "-- hand-written day statement\n" + text.replace('"SCHEMA"."hatch_daily"', "{aggregate}")
    )
    day = ago(3)
    _violations(conn, day, [("10.0.0.1", "/a", "ip", 5, 1), ("10.0.0.2", "/a", "ip", 6, 2), ("10.0.0.3", "/b", "ip", 1, 3)])
    result = dg.materialize([hatch.asset], partition_key=str(day), resources=resources, instance=instance,
                            run_config={"ops": {hatch.asset.op.name: {"config": {"recompute_check": True}}}})
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations() if e.check_name == "rows_match_raw")
    assert conn.execute("SELECT endpoint, violations FROM erp_pipelines.hatch_daily ORDER BY 1").fetchall() == [
        ("/a", 2), ("/b", 1)]
    from erp_pipelines.dbwork import erp_connection

    with erp_connection(ErpDatabase(url=resources["erp_db"].url), "test", {}) as c:
        assert c.execute("SELECT 1").fetchone() and hatch.spec.bind(c).replace_day_sql.startswith("-- hand-written")
