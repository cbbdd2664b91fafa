"""What the side benches measured, summarized in results.md: trigger overhead, whole steps at 100k events
a day, the longest transaction of a 365-day backfill, retention's statements.

Why here: the issue asks results.md to carry these figures, but they come from benches of their own
(bench/trigger_overhead.py, bench/rollup_ledger.py) with their own data sizes and run times. Each writes
a JSON beside its markdown; this module reads whichever are present and says where the full tables are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.common import OUT_DIR

CAPTURE = "results-capture.json"
LEDGER_30D = "rollup_ledger_30d.json"
LEDGER_365D = "rollup_ledger_365d.json"


def _load(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / name
    return json.loads(path.read_text("utf-8")) if path.exists() else None


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _yes(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def _capture_rows(capture: dict[str, Any]) -> list[str]:
    rows = []
    for key in ("insert_one", "insert_sample", "insert_many", "update_one", "delete_one"):
        m = capture.get(key)
        if m:
            rows.append(f"| trigger overhead: {m['label']} | {m['on_ms']:.3f} ms vs {m['off_ms']:.3f} ms | "
                        f"{m['ratio']:.2f}x | <= 1.15x | {_yes(m['ratio'] <= 1.15)} | {CAPTURE[:-5]}.md |")
    return rows


def _ledger_rows(r: dict[str, Any], source: str) -> list[str]:
    scale = f"{r['days']} days x {r['events_per_day']:,} events/day"
    samples = (r.get("counts") or {}).get("system_metric_samples")
    if samples:
        scale += f", {samples // r['days']:,} samples/day"
    usage = r["usage_step_day"] / r["floor_scan_serial"]
    metric = r["metric_step_day"] / r["floor_samples_count"]
    rows = []
    if r["events_per_day"] >= 50_000:  # below that a day's floor is a fraction of a millisecond
        rows += [
            f"| client_daily_usage WHOLE step, one day ({scale}) | {_ms(r['usage_step_day'])} | "
            f"{usage:.2f}x serial scan | <= 10x | {_yes(usage <= 10)} | {source} |",
            f"| system_metric_daily WHOLE step, one day ({scale}) | {_ms(r['metric_step_day'])} | "
            f"{metric:.2f}x count(*) | <= 6x | {_yes(metric <= 6)} | {source} |",
        ]
    for chunk in (1, 7):
        rows.append(f"| longest transaction of a {r['days']}-day single-run backfill, days_per_transaction={chunk} "
                    f"({scale}) | {_ms(r[f'backfill_chunk{chunk}_longest_xact'])} | | bounded by one chunk | "
                    f"| {source} |")
    if "retention_longest_delete" in r:  # the statements holding row locks; the reads hold none
        rows += [
            f"| retention ({r['retention_rows']:,} rows): longest DELETE statement ({scale}) | "
            f"{_ms(r['retention_longest_delete'])} | | <= 100 ms | {_yes(r['retention_longest_delete'] <= 0.1)} | "
            f"{source} |",
            f"| retention ({r['retention_rows']:,} rows): longest statement of any kind ({scale}) | "
            f"{_ms(r['retention_longest_statement'])} | | | | {source} |",
        ]
    else:
        rows.append(
            f"| retention ({r['retention_rows']:,} rows): longest statement ({scale}) | "
            f"{_ms(r['retention_longest_statement'])} | | <= 100 ms | {_yes(r['retention_longest_statement'] <= 0.1)} | "
            f"{source} |"
        )
    rows += [
        f"| retention ({r['retention_rows']:,} rows): total vs one plain DELETE ({scale}) | "
        f"{r['retention_total']:.2f} s | {r['retention_total'] / r['one_delete']:.2f}x one DELETE | | | {source} |",
    ]
    return rows


def lines(folder: Path = OUT_DIR) -> list[str]:
    """The markdown section (empty when no side bench has written its JSON)."""
    rows: list[str] = []
    capture = _load(folder, CAPTURE)
    if capture:
        rows += _capture_rows(capture)
    for name in (LEDGER_30D, LEDGER_365D):
        found = _load(folder, name)
        if found:
            rows += _ledger_rows(found, name[:-5] + ".md")
    if not rows:
        return []
    return [
        "",
        "## From the side benches",
        "",
        "Measured by bench/trigger_overhead.py and bench/rollup_ledger.py on data of their own (sizes in each "
        "row); the full tables and their run notes are in the file named.",
        "",
        "| measurement | time | ratio | target | met? | source |",
        "|---|---|---|---|---|---|",
        *rows,
    ]
