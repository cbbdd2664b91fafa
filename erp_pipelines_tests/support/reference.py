"""An independent reference for the rollups: plain Python over the raw rows, exact arithmetic (Fraction).

Written from the issue's definitions, not from the SQL, so agreement between the two means something.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from fractions import Fraction
from typing import Any

from erp_pipelines.rollups.assets import DEFAULT_EVENT_CATEGORIES

# Every event_type the default mapping counts in a category (the rest are "uncategorized").
KNOWN_EVENT_TYPES = frozenset(t for types in DEFAULT_EVENT_CATEGORIES.values() for t in types)


def round_half_away(value: Fraction, digits: int = 0) -> Fraction:
    scale = Fraction(10) ** digits
    scaled = value * scale
    whole = int(abs(scaled) + Fraction(1, 2))  # floor(|x| + 1/2)
    return Fraction(whole if scaled >= 0 else -whole) / scale


def usage_reference(
    events: list[tuple[Any, int | None, int | None, str, datetime]],
    categories: dict[str, list[str]] = DEFAULT_EVENT_CATEGORIES,
) -> dict[tuple[date, Any, int], tuple[int, int, int, int, int]]:
    """{(date, client_id, module_id): (view, create, edit, delete, active_users)}."""
    category_of = {t.lower(): c for c, types in categories.items() for t in types}
    counts: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    users: dict[tuple, set[int]] = defaultdict(set)
    for client_id, module_id, user_id, event_type, occurred_at in events:
        if module_id is None:
            continue
        key = (occurred_at.date(), client_id, module_id)
        counts[key]  # a key exists for every client/module/day with events, categorized or not
        category = category_of.get(event_type.lower())
        if category:
            counts[key][category] += 1
        if user_id is not None:
            users[key].add(user_id)
    return {
        key: (c["view"], c["create"], c["edit"], c["delete"], len(users[key])) for key, c in counts.items()
    }


def metric_reference(
    samples: list[tuple[int | None, float | None, int | None, int | None, datetime]],
) -> dict[date, tuple[int | None, float | None, int, int]]:
    """{day: (avgLatencyMs, avgErrorRatePct, reqCount, errCount)} for days with samples."""
    by_day: dict[date, list] = defaultdict(list)
    for sample in samples:
        by_day[sample[4].date()].append(sample)
    result = {}
    for day, rows in by_day.items():
        weighted = Fraction(0)
        weight = 0
        for latency, _rate, req, _err, _at in rows:
            if latency is not None:
                w = max(req if req is not None else 0, 1)
                weighted += latency * w
                weight += w
        avg_latency = int(round_half_away(weighted / weight)) if weight else None
        req_total = sum(r for _, _, r, _, _ in rows if r is not None)
        err_total = sum(e for _, _, _, e, _ in rows if e is not None)
        if req_total > 0:
            rate: float | None = float(round_half_away(Fraction(100 * err_total, req_total), 2))
        else:
            rates = [r for _, r, _, _, _ in rows if r is not None]
            rate = sum(rates) / len(rates) if rates else None
        result[day] = (avg_latency, rate, req_total, err_total)
    return result
