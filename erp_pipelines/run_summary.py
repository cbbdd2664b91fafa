"""What the `make run` summary says about checks, drift and tables, as pure functions over typed values.

Why: the summary said "31 failed" for the healthy demo (30 are the designed NULL-module warnings, 1 the
designed incident day), "drift reported 2" without naming them, "tables 19 -> 49" without the tables, and a
second, no-op run said "0 failed" while the incident ERROR still stood. Here:

- `split_designed` separates what the demo was built to show (DEMO_DESIGNED) from real failures;
- `standing_failures` reads the instance's latest evaluation of every check per partition, so a run that
  evaluated nothing still reports a failure that stands (`with_standing` adds them to the run's own);
- `check_count` / `failure_sections` word it; `without_step_prefix` keeps progress lines from repeating
  the step's name (`[client_daily_usage] client_daily_usage: ...`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dagster as dg

from erp_pipelines.rollups.daily_report import latest_evaluations

# "<asset>.<check>" -> what the demo data was built to show with it (erp_pipelines/demo/generate.py)
DEMO_DESIGNED: dict[str, str] = {
    "client_daily_usage.no_events_without_module": "the demo's usage events without a module (NULL module_id, by design)",
    "system_metric_daily.health_thresholds": "the demo's incident day (latency and error rate past the critical thresholds, by design)",
}


@dataclass(frozen=True)
class CheckLine:
    """One check evaluation, as the summary prints it."""

    target: str  # "<asset>.<check>"
    partition: str | None
    passed: bool
    severity: str
    description: str
    standing: bool = False  # evaluated by an earlier run, not re-evaluated by this one


def split_designed(checks: Iterable[CheckLine], designed: Iterable[str] = DEMO_DESIGNED) -> tuple[list[CheckLine], list[CheckLine]]:
    """(failures the demo was built to show, real failures)."""
    names = set(designed)
    failed = [c for c in checks if not c.passed]
    return [c for c in failed if c.target in names], [c for c in failed if c.target not in names]


def with_standing(run_checks: Sequence[CheckLine], standing: Iterable[CheckLine]) -> list[CheckLine]:
    """The run's own results plus the standing failures of (check, partition)s this run did not evaluate."""
    seen = {(c.target, c.partition) for c in run_checks}
    return [*run_checks, *(c for c in standing if (c.target, c.partition) not in seen)]


def check_count(checks: Sequence[CheckLine], designed: Iterable[str] = DEMO_DESIGNED) -> str:
    shown, real = split_designed(checks, designed)
    passed = sum(c.passed for c in checks)
    standing = sum(c.standing for c in checks if not c.passed)
    text = f"{passed} passed, {len(real)} real failure(s)"
    if shown:
        text += f", {len(shown)} failing as the demo was built to show"
    if standing:
        text += f" ({standing} standing from earlier runs)"
    return text


def failure_lines(checks: Iterable[CheckLine]) -> list[str]:
    """The failed checks, one line per check and severity: a check failing on one day names the day and why;
    one failing on many days (a per-day WARN on every day of a backfill) gives the count and the day range,
    with the first day's reason, instead of a line per day."""
    groups: dict[tuple[str, str], list[CheckLine]] = {}
    for line in checks:
        if not line.passed:
            groups.setdefault((line.target, line.severity), []).append(line)
    out = []
    for (target, severity), lines in groups.items():
        days = sorted(line.partition for line in lines if line.partition)
        standing = " (standing since an earlier run)" if all(line.standing for line in lines) else ""
        if len(lines) == 1:
            where = f" [{lines[0].partition}]" if lines[0].partition else ""
            out.append(f"{target}{where}: FAILED ({severity}){standing}: {lines[0].description}")
        else:
            span = f" on {len(lines)} days ({days[0]}..{days[-1]})" if len(days) == len(lines) else f" {len(lines)}x"
            first = min(lines, key=lambda line: line.partition or "")
            out.append(f"{target}: FAILED ({severity}){span}{standing}; first: {first.description}")
    return out


def failure_sections(checks: Sequence[CheckLine], designed: dict[str, str] = DEMO_DESIGNED) -> list[str]:
    """Indented lines: real failures first, then what the demo was built to show (with why)."""
    shown, real = split_designed(checks, designed)
    out = []
    if real:
        out.append("real failures:")
        out += [f"  check {line}" for line in failure_lines(real)]
    if shown:
        out.append("as the demo was built to show (not faults):")
        for line in failure_lines(shown):
            target = line.split(" ", 1)[0].split(":", 1)[0]
            out.append(f"  check {line}  <- {designed.get(target, 'by design')}")
    return out


def named(items: Sequence[str], limit: int = 12) -> str:
    """`a, b, c` (and N more)."""
    if not items:
        return "none"
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def without_step_prefix(step_key: str | None, message: str) -> str:
    """A progress line without a leading `<step_key>:` (the line is already prefixed with the step)."""
    if step_key and message.startswith(f"{step_key}:"):
        return message[len(step_key) + 1:].lstrip()
    return message


def standing_failures(instance: dg.DagsterInstance, check_keys: Iterable[dg.AssetCheckKey]) -> list[CheckLine]:
    """The failures that stand: per check and partition, the instance's LATEST evaluation, when it failed (a
    per-day check's standing verdict is left out: it repeats the days' own failures, rollups/daily_report.py)."""
    out = []
    for key in check_keys:
        for partition, data in latest_evaluations(instance, key).items():
            if not data.passed:
                out.append(CheckLine(f"{key.asset_key.to_user_string()}.{key.name}", partition, data.passed,
                                     data.severity.value, data.description or "", standing=True))
    return out
