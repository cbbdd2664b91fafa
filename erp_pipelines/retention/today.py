"""'today' for retention: the wall clock's UTC day, or a replay's override (never a future day).

Why its own module: retention counts its windows back from this day; it lived in the rollup steps before,
although no rollup uses it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from erp_pipelines.errors import ErpPipelinesError


def guard_today(override: str | None) -> date:
    """'today' for retention: the override (YYYY-MM-DD, replays/tests; never after the wall clock's UTC day)
    or the wall clock's UTC day."""
    wall = datetime.now(UTC).date()
    if override is None:
        return wall
    try:
        day = date.fromisoformat(override)
    except ValueError:
        raise ErpPipelinesError(
            f"today {override!r} is not a date.",
            where="run config `today`",
            fix="Use YYYY-MM-DD, or leave it unset to use the current UTC day.",
        ) from None
    if day > wall:
        raise ErpPipelinesError(
            f"today {override!r} is in the future (the UTC day is {wall}); retention would count back from it.",
            where="run config `today`",
            fix="Leave it unset (the wall clock) or use a past day to replay a run.",
        )
    return day
