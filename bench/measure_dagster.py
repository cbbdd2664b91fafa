"""Dagster runs of both rollups for one partition, in a child process: wall time and peak RSS per size.

Why: the SQL is measured elsewhere; this is what the run around it costs and whether its memory stays
flat as the tables grow (measured at the smallest and the largest size).
"""

from __future__ import annotations

from typing import Any

from bench.common import MB, REPEAT, Bench, Measurement, Row, run_child


def run(bench: Bench) -> dict[str, Any]:
    out = run_child("dagster", {"url": bench.url, "day": bench.day, "reps": REPEAT}, timeout_s=900)
    bench.progress(
        f"  dagster one-day run: {out['seconds']:.2f}s, RSS {out['rss_before'] / MB:.0f} MB before, "
        f"peak {out['rss_peak'] / MB:.0f} MB"
    )
    return out


def rows(results: dict[str, Any]) -> list[Row]:
    dag = results.get("dagster", {})
    if not dag:
        return []
    sizes = sorted(dag, key=int)
    big = dag[sizes[-1]]
    out = [
        Row(
            f"Dagster run, one-day partition, both rollups ({int(sizes[-1]):,} events)",
            big["seconds"],
            note="dg.materialize wall time, in-process executor, ephemeral instance",
        )
    ]
    for key in sizes:
        peak = dag[key]["rss_peak"] / MB
        out.append(
            Row(
                f"peak run RSS at {int(key):,} events (MB)",
                None,
                None,
                "",
                "<= 150 MB",
                peak <= 150,
                f"{peak:.0f} MB (before the run: {dag[key]['rss_before'] / MB:.0f} MB)",
            )
        )
    if len(sizes) > 1:
        growth = dag[sizes[-1]]["rss_peak"] / dag[sizes[0]]["rss_peak"]
        out.append(
            Row("peak run RSS, largest / smallest size", None, growth, "", "flat (<= 1.1x)", growth <= 1.1)
        )
    return out


# Run by bench/run.py at the smallest and the largest size (results["dagster"] keyed by event count).
DAGSTER = Measurement("dagster", None, rows=rows)
