"""A toy rollup added the way a team adds one: a YAML instance in a copy of the defs folder, nothing else.

`write_toy_defs` copies erp_pipelines/defs and adds `rollups/toy_events_daily/defs.yaml` (a `timestamptz`
raw table); `main` runs in a subprocess with ERP_PIPELINES_DEFS_DIR pointing at the copy, so the project's
own modules (registry, jobs, capture, retention, grants) load it exactly as they load the package's own
instances: nothing is patched. It prints what it saw as JSON for the test (rollups/test_declared_rollups.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

TOY_TABLE_DDL = """
CREATE TABLE toy_events (
    id bigserial PRIMARY KEY,
    kind text,
    amount double precision,
    seen_at timestamptz NOT NULL
)
"""
TOY_YAML = """\
type: erp_pipelines.rollups.component.DailyRollup
attributes:
  aggregate_table: toy_events_daily
  description: Per UTC day and kind, the toy events, their amounts and mean amount.
  raw_table: toy_events
  time_column: seen_at
  time_type: timestamptz
  keys: [kind]
  measures:
    - {name: events, kind: count}
    - {name: amount_total, kind: sum, column: amount}
    - {name: amount_mean, kind: weighted_mean, column: amount}
  raw_retention: metricsRetentionDays
"""


def write_toy_defs(tmp_path: Path) -> Path:
    """A copy of the package's defs folder, under a module name of its own, with the toy instance added."""
    from erp_pipelines.rollups.component import DEFS_DIR

    folder = tmp_path / "toy_team_defs"
    shutil.copytree(DEFS_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "rollups" / "toy_events_daily").mkdir()
    (folder / "rollups" / "toy_events_daily" / "defs.yaml").write_text(TOY_YAML)
    return folder


def run_toy_flow(defs_dir: Path, erp_url: str, clean_day: date, dirty_day: date, today: date) -> dict[str, Any]:
    """`main` in a subprocess with the copy as the defs folder; what it printed."""
    env = {**os.environ, "ERP_PIPELINES_DEFS_DIR": str(defs_dir)}
    out = subprocess.run(
        [sys.executable, "-m", "erp_pipelines_tests.support.toy_rollup", erp_url, str(clean_day), str(dirty_day),
         str(today)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _checks(result: Any) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def main(erp_url: str, clean_day: date, dirty_day: date, today: date) -> dict[str, Any]:
    import dagster as dg
    import psycopg

    from erp_pipelines import grants
    from erp_pipelines.capture import triggers
    from erp_pipelines.capture.targets import capture_targets
    from erp_pipelines.defs_factory import build_defs
    from erp_pipelines.resources import ErpDatabase
    from erp_pipelines.retention.assets import RETENTION_PRIVILEGES, retention_pruning
    from erp_pipelines.rollups.registry import ROLLUP_ASSETS, rollup_named

    erp_db = ErpDatabase(url=erp_url)
    defs = build_defs(erp_db)
    spec = rollup_named("toy_events_daily")
    toy = next(a for a in ROLLUP_ASSETS if a.key == dg.AssetKey("toy_events_daily"))
    seen: dict[str, Any] = {
        "asset_keys": sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()),
        "checks": sorted(k.name for k in toy.check_keys),
        "grants": {"rollup": dict(spec.privileges), "retention": {
            t: RETENTION_PRIVILEGES[t] for t in (spec.raw_table, spec.aggregate_table)}},
        # what `erp-pipelines grants --role toy_role --for rollups --for retention` prints
        "grant_script": grants.script("toy_role", ["rollups", "retention"],
                                      grants.Target("erp", "public", "erp_pipelines")).splitlines(),
    }
    resources = {"erp_db": erp_db}
    config = {"ops": {toy.op.name: {"config": {"recompute_check": True}}}}
    with dg.instance_for_test() as instance, psycopg.connect(erp_url, autocommit=True) as conn:
        with conn.transaction():
            seen["capture"] = triggers.install(conn, "public", capture_targets()).triggers_created
        for day in (clean_day, dirty_day):
            result = dg.materialize([toy], partition_key=str(day), resources=resources, instance=instance,
                                    run_config=config)
            seen[f"checks_{day}"] = _checks(result)
            seen[f"metadata_{day}"] = {
                k: getattr(v, "value", None) for k, v in result.asset_materializations_for_node(toy.op.name)[0]
                .metadata.items() if isinstance(getattr(v, "value", None), int | float)
            }
        seen["rows"] = [
            [str(r[0]), r[1], int(r[2]), float(r[3]), None if r[4] is None else float(r[4])]
            for r in conn.execute(
                "SELECT day, kind, events, amount_total, amount_mean FROM erp_pipelines.toy_events_daily "
                "ORDER BY day, kind"
            ).fetchall()
        ]
        # an ERP write to a rolled-up day is captured: its day is marked, and the rollup clears the mark
        conn.execute("INSERT INTO toy_events (kind, amount, seen_at) VALUES ('a', 1, %s::date + time '12:00')",
                     (clean_day,))
        mark = "SELECT count(*) FROM erp_pipelines.invalidations WHERE raw_table = 'toy_events' AND day = %s"
        seen["marked"] = conn.execute(mark, (clean_day,)).fetchone()[0]
        dg.materialize([toy], partition_key=str(clean_day), resources=resources, instance=instance)
        seen["marked_after_rollup"] = conn.execute(mark, (clean_day,)).fetchone()[0]
        result = dg.materialize([retention_pruning], resources=resources, instance=instance,
                                run_config={"ops": {"retention_pruning": {"config": {"today": str(today)}}}})
        md = result.asset_materializations_for_node("retention_pruning")[0].metadata
        seen["retention"] = {k: getattr(v, "value", None) for k, v in md.items() if "toy" in k or k == "skipped_days"}
        seen["raw_left"] = {
            str(d): conn.execute(
                "SELECT count(*) FROM toy_events WHERE seen_at >= %s::date AT TIME ZONE 'UTC' "
                "AND seen_at < (%s::date + 1) AT TIME ZONE 'UTC'", (d, d)).fetchone()[0]
            for d in (clean_day, dirty_day)
        }
        seen["pruned"] = [str(r[0]) for r in conn.execute(
            "SELECT day FROM erp_pipelines.pruned_days WHERE raw_table = 'toy_events' ORDER BY day").fetchall()]
    return seen


if __name__ == "__main__":
    url, clean, dirty, today_ = sys.argv[1:5]
    print(json.dumps(main(url, date.fromisoformat(clean), date.fromisoformat(dirty), date.fromisoformat(today_)),
                     default=str))
    sys.exit(0)


