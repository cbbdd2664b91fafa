"""Deterministic raw rows of the ERP (usage events, metric samples) and reading them back as the reference takes them."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import psycopg

EVENT_TYPES = ["view", "create", "edit", "delete", "page_view", "login"]


def at(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute)


def day_events(clients: list[uuid.UUID], day: date, n: int, salt: int = 0) -> list[tuple]:
    """n deterministic usage events spread over `day` (clients, modules 1-3, users, event types)."""
    return [
        (
            clients[(i + salt) % len(clients)],
            1 + (i * 7 + salt) % 3,
            (i * 5 + salt) % 4 or None,
            EVENT_TYPES[(i + day.day + salt) % len(EVENT_TYPES)],
            at(day, (i * 3 + salt) % 24, (i * 11 + salt) % 60),
        )
        for i in range(n)
    ]


def day_samples(day: date, n: int, salt: int = 0) -> list[tuple]:
    """n deterministic metric samples spread over `day`: (latencyMs, errorRatePct, reqCount, errCount, at)."""
    return [
        (
            80 + (i * 37 + day.day + salt) % 400,
            float((i + salt) % 5),
            10 + (i * 13 + salt) % 90,
            (i + day.day + salt) % 4,
            at(day, (i * 5 + salt) % 24, (i * 7 + salt) % 60),
        )
        for i in range(n)
    ]


def all_raw(conn: psycopg.Connection) -> tuple[list[tuple], list[tuple]]:
    """(samples, events) as the reference functions take them."""
    samples = conn.execute(
        'SELECT "latencyMs", "errorRatePct", "reqCount", "errCount", collected_at FROM system_metric_samples'
    ).fetchall()
    events = conn.execute(
        "SELECT client_id, module_id, user_id, event_type, occurred_at FROM client_usage_events"
    ).fetchall()
    return samples, events


def raw_state(conn: psycopg.Connection) -> tuple[list, list]:
    samples, events = all_raw(conn)
    return sorted(samples, key=repr), sorted(events, key=repr)
