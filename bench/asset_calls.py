"""The project's rollup code called the way erp_pipelines/rollups/assets.py calls it, minus the Dagster run.

Why: a ratio is only meaningful if the measured work is the asset's own code path; these helpers call the
decorated asset function (per-day loop, single transaction) and the statements of rollups/sql.py alone.
"""

from __future__ import annotations

import functools
import inspect
import logging
import typing
from datetime import UTC, date, datetime
from typing import Any

import psycopg

from erp_pipelines.partitions import day_bounds


def categories() -> dict[str, list[str]]:
    from erp_pipelines.rollups.assets import DEFAULT_EVENT_CATEGORIES, category_params

    return category_params(DEFAULT_EVENT_CATEGORIES)


def day_params(day: date) -> dict[str, Any]:
    day_start, day_end = day_bounds(day)
    return {
        "day": day,
        "day_start": day_start,
        "day_end": day_end,
        "now": datetime.now(UTC).replace(tzinfo=None),
        **categories(),
    }


def statement_alone(conn: psycopg.Connection, statement: str, params: dict[str, Any]) -> None:
    """One rollup statement from rollups/sql.py in its own transaction: the SQL cost without the asset's
    bookkeeping (connection, advisory lock, stats and reconciliation statements). Never prepared, as the
    assets run their day reads: planned for the day's bounds, not once for any day."""
    with conn.transaction():
        conn.execute(statement, params, prepare=False).fetchall()


class _WindowContext:
    """The two things the rollup functions use from their Dagster context: the time window and a logger.

    Dagster's direct invocation cannot give a partition *range* (`partition_time_window` fails outside a
    run), so the bench calls the decorated function itself with this stand-in: exactly the asset's code
    path, per-day loop and single transaction included, minus the Dagster run around it.
    """

    def __init__(self, first: date, last: date) -> None:
        import dagster as dg

        start, _ = day_bounds(first)
        _, end = day_bounds(last)
        self.partition_time_window = dg.TimeWindow(start.replace(tzinfo=UTC), end.replace(tzinfo=UTC))
        self.log = logging.getLogger("bench.rollup")
        self.log.setLevel(logging.ERROR)  # the assets' per-run info/warnings would flood the bench output


class _StepContext(_WindowContext):
    """The stand-in context, plus what rollups/daily_report.report reads from a real one (no checks selected).

    The Dagster instance is only read by a range run (one extra materialization per day): created on first
    use, so a timed one-day step does not pay for building an instance Dagster would already have.
    """

    def __init__(self, name: str, first: date, last: date) -> None:
        from erp_pipelines.rollups import assets

        super().__init__(first, last)
        self.has_partition_key = first == last
        self.selected_asset_check_keys: set = set()
        self.assets_def = getattr(assets, name)
        self._instance: Any = None

    @property
    def instance(self) -> Any:
        import dagster as dg

        if self._instance is None:
            self._instance = dg.DagsterInstance.ephemeral()
        return self._instance


@functools.cache
def _resource(url: str) -> Any:
    """The ErpDatabase resource of `url`, built once, as Dagster builds a run's resources before its steps."""
    from erp_pipelines.resources import ErpDatabase

    return ErpDatabase(url=url)


def invoke_asset(name: str, url: str, first: date, last: date) -> Any:
    """Run the rollup asset's own function for the days first..last (one call, like a single-run backfill).

    Arguments are matched by parameter name (context, config, erp_db), and the config is the asset's own
    config class with its defaults, so the bench follows the asset when its signature changes. What is
    timed is the function: connection, lock, SQL, ledger, checks and the events it yields; not Dagster's
    run around it (resource construction, event storage).
    """
    from erp_pipelines.rollups import assets

    fn = getattr(assets, name).op.compute_fn.decorated_fn
    hints = typing.get_type_hints(fn)
    values = {"context": _StepContext(name, first, last), "erp_db": _resource(url)}
    args = [values[p] if p in values else hints[p]() for p in inspect.signature(fn).parameters]
    result = fn(*args)
    return list(result) if inspect.isgenerator(result) else result


def bound_statement(url: str, statement: str) -> str:
    """A statement of rollups/sql.py as the rollup runs it: a write or reconciliation statement gets the raw
    table's per-row hash put in (RollupSpec.bind); any other is returned as it is."""
    from erp_pipelines.rollups.registry import ROLLUPS

    for spec in ROLLUPS:
        if statement in (spec.replace_day_sql, spec.reconcile_day_sql):
            with psycopg.connect(url) as conn:
                bound = spec.bind(conn)
            return bound.replace_day_sql if statement == spec.replace_day_sql else bound.reconcile_day_sql
    return statement
