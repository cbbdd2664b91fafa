"""What every bench module shares: sizes and repeat counts, timing, the results row, the run's context.

Why one module: the measurement modules (measure_*.py) and the report read the same constants and hand
each other the same values (Timing, Row, Bench); keeping them here lets each measurement stay a module of
its own that the registry in bench/measurements.py lists.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from erp_pipelines.embedded import PROJECT_ROOT

BENCH_DIR = PROJECT_ROOT / ".erp-pipelines" / "bench-pg"
OUT_DIR = Path(__file__).resolve().parent
DB_NAME = "bench"
DAYS = 30
CLIENTS = 200
MODULES = 40
REPEAT = 3
SLOW_RUN_S = 60.0  # a measurement whose first run takes longer is not repeated (noted in the results)
MB = 1024 * 1024
QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

Progress = Callable[[str], None]


@dataclass
class Timing:
    """Median of the timed runs (after one untimed warm-up run unless told otherwise)."""

    median: float
    runs: list[float]
    note: str = ""


def measure(
    fn: Callable[[], Any],
    *,
    repeat: int = REPEAT,
    warmup: bool = True,
    reset: Callable[[], Any] | None = None,
) -> Timing:
    """Time `fn` `repeat` times; `reset` runs untimed before each run so every run does the same work."""
    if warmup:
        if reset:
            reset()
        fn()
    runs: list[float] = []
    note = ""
    for _ in range(repeat):
        if reset:
            reset()
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
        if runs[0] > SLOW_RUN_S and repeat > 1:
            note = f"one run only (took > {SLOW_RUN_S:.0f}s)"
            break
    return Timing(statistics.median(runs), runs, note)


def paired(
    floor: Callable[[], Any],
    step: Callable[[], Any],
    *,
    rounds: int = 5,
    reset: Callable[[], Any] | None = None,
) -> tuple[Timing, Timing]:
    """A floor and a step timed alternately, round by round, after one warm-up of each.

    Why: the machine is shared, and a load spike between a floor timed first and a step timed a minute later
    moved single ratios by 30% or more; alternating them puts both under the same load. `reset` runs untimed
    before each step run.
    """
    floor()
    if reset:
        reset()
    step()
    floors: list[float] = []
    steps: list[float] = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        floor()
        floors.append(time.perf_counter() - t0)
        if reset:
            reset()
        t0 = time.perf_counter()
        step()
        steps.append(time.perf_counter() - t0)
    note = f"timed alternately with its floor, {rounds} rounds"
    return Timing(statistics.median(floors), floors, note), Timing(statistics.median(steps), steps, note)


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


@dataclass
class Row:
    """One line of the results table."""

    measurement: str
    seconds: float | None
    ratio: float | None = None
    ratio_of: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""


def ratio_row(name: str, seconds: float, floor: float, floor_name: str, limit: float, target: str) -> Row:
    """A measurement beside its floor: met when seconds / floor <= limit."""
    ratio = seconds / floor if floor else None
    return Row(name, seconds, ratio, floor_name, target, ratio is not None and ratio <= limit)


def run_child(kind: str, args: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """`python -m bench.child KIND JSON` (pandas and Dagster in a process of their own: clean RSS numbers)."""
    cmd = [sys.executable, "-m", "bench.child", kind, json.dumps(args, default=str)]
    done = subprocess.run(
        cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench child {kind} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass
class Bench:
    """The run's context handed to every measurement: the database, the data's days, the time budget."""

    url: str
    sa_url: str
    events: int
    samples: int
    sizes: list[tuple[int, int]]
    deadline: float
    end_day: date
    progress: Progress = print
    results: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def first_day(self) -> date:
        return self.end_day - timedelta(days=DAYS - 1)

    @property
    def day(self) -> date:
        """The one measured day: a weekday near the end, not the incident day (a normal night's run)."""
        day = self.end_day - timedelta(days=1)
        while day.weekday() >= 5:
            day -= timedelta(days=1)
        return day

    def minutes_left(self) -> float:
        return (self.deadline - time.monotonic()) / 60

    def section(self, key: str, fn: Callable[[], Any]) -> None:
        """Run one optional part; a failure is noted and the other parts' numbers are kept.

        The tree changes under the bench (other engineers edit the assets it imports), so one broken
        import or statement must not throw away twenty minutes of measurements.
        """
        try:
            self.results[key] = fn()
        except Exception as exc:  # reported in results.md; the run goes on
            message = " ".join(f"{type(exc).__name__}: {exc}".split())[:400]
            self.notes.append(f"`{key}` failed and is missing from the table: {message}")
            self.progress(f"  {key} FAILED: {message}")


@dataclass(frozen=True)
class Measurement:
    """One measurement the bench runs at the largest size and the report shows.

    `run(bench)` returns what goes into `results[key]` (None: run elsewhere, e.g. per size); `rows(results)`
    gives its lines of the results table and `details(results)` its markdown section (both may return []
    when `key` is missing: a failed section is only a note).
    """

    key: str
    run: Callable[[Bench], Any] | None
    rows: Callable[[dict[str, Any]], list[Row]]
    details: Callable[[dict[str, Any]], list[str]] = lambda results: []
