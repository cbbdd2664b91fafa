"""Which refresh runs the late-data sensor requests, from the marked days and the refresh runs' history.

Pure (no database, no Dagster instance), so the rules are unit-tested alone:
- a marked (raw table, day) asks for the rollups fed by that table whose partition `day` is materialized;
  never-materialized days are the nightly schedule's catch-up, and days outside the partitions (before the
  start date, today, the future) are left alone: the marks stay until a rollup of that day clears them;
- one run per day (all its rollups together); none while a late-data run of that day is queued or running
  (it clears what its snapshot sees; what it misses is still marked afterwards and asked for then);
- marks are cleared only by the rollup's own write transaction, so marks still there after a run mean either
  new changes or a failed run: the day is asked for again. The run key names the previous run of the day, so
  a retried sensor tick never asks twice for the same state, and a new state always gets a new key;
- after consecutive failures the day waits `retry_delay_s(failures)` from the last failure before the next
  request (the first re-request is immediate), so a broken day cannot flood the run queue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from erp_pipelines.capture.log import MarkedDay
from erp_pipelines.capture.targets import CaptureTarget

RETRY_BASE_S = 300
RETRY_MAX_S = 3600


@dataclass(frozen=True)
class RefreshHistory:
    """The late-data refresh runs of one day, as the sensor needs them."""

    in_flight: bool = False
    last_run_id: str | None = None
    consecutive_failures: int = 0
    last_failure_end: float | None = None  # POSIX seconds


@dataclass(frozen=True)
class RefreshRequest:
    day: str
    rollups: tuple[str, ...]
    run_key: str
    attempt: int  # 1 for a new change; n+1 after n consecutive failed runs


def retry_delay_s(failures: int) -> float:
    """Wait before asking again after `failures` consecutive failed runs: 0, then 5, 10, 20, 40, 60 min."""
    if failures <= 1:
        return 0.0
    return float(min(RETRY_BASE_S * 2 ** (failures - 2), RETRY_MAX_S))


def days_to_refresh(
    marked: Iterable[MarkedDay],
    targets: Iterable[CaptureTarget],
    materialized: Mapping[str, set[str]],
    first_day: str,
    last_day: str | None,
) -> dict[str, tuple[str, ...]]:
    """day -> the rollups to re-materialize for it (materialized ones only), in day order."""
    rollups_of = {t.raw_table: t.rollups for t in targets}
    wanted: dict[str, set[str]] = {}
    for mark in marked:
        day = mark.day.isoformat()
        if day < first_day or last_day is None or day > last_day:
            continue
        for rollup in rollups_of.get(mark.raw_table, ()):
            if day in materialized.get(rollup, set()):
                wanted.setdefault(day, set()).add(rollup)
    return {day: tuple(sorted(rollups)) for day, rollups in sorted(wanted.items())}


def plan_refreshes(
    wanted: Mapping[str, tuple[str, ...]],
    history: Mapping[str, RefreshHistory],
    now: float,
    limit: int,
) -> tuple[list[RefreshRequest], dict[str, str]]:
    """The run requests for `wanted` days (at most `limit`), and why the others wait (day -> reason)."""
    requests: list[RefreshRequest] = []
    waiting: dict[str, str] = {}
    for day, rollups in wanted.items():
        past = history.get(day, RefreshHistory())
        if past.in_flight:
            waiting[day] = "a refresh of this day is queued or running"
            continue
        delay = retry_delay_s(past.consecutive_failures)
        if past.last_failure_end is not None and now < past.last_failure_end + delay:
            waiting[day] = (
                f"{past.consecutive_failures} refreshes failed in a row; next try in "
                f"{int(past.last_failure_end + delay - now)} s"
            )
            continue
        if len(requests) >= limit:
            waiting[day] = f"more than {limit} days changed; asked for on the next tick"
            continue
        after = past.last_run_id[:8] if past.last_run_id else "none"
        requests.append(
            RefreshRequest(
                day=day,
                rollups=rollups,
                run_key=f"late-{day}-{'+'.join(rollups)}-after-{after}",
                attempt=past.consecutive_failures + 1,
            )
        )
    return requests, waiting
