"""Counting the queries a connection sends, to test the replay's round trips (a count, never a time)."""

from __future__ import annotations

import psycopg


class CountingConnection(psycopg.Connection):
    """A connection that lists every query sent through `execute` in `sent` (one entry per round trip)."""

    sent: list[str]

    def execute(self, query, params=None, **kwargs):  # noqa: ANN001 - psycopg's own signature
        self.sent.append(query if isinstance(query, str) else repr(query))
        return super().execute(query, params, **kwargs)


def counting_connection(url: str) -> CountingConnection:
    """An autocommit connection whose `sent` lists every query sent through `execute`."""
    conn = CountingConnection.connect(url, autocommit=True)
    conn.sent = []
    return conn
