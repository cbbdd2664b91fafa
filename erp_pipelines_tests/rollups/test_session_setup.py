"""A step's connection on the real database: its settings, and the lock it waits for.

The setup statement, the lock and the unlock each run in autocommit, in one round trip (dbwork.py). These
tests pin what that must not change: every setting is in place, the connection is in the mode asked for,
a rollup's wait for its advisory lock is not cut short by lock_timeout (retention's is), and lock_timeout
is back for the statements after the wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

from erp_pipelines.dbwork import erp_connection, lock_key, write_transaction
from erp_pipelines.errors import DatabaseUnavailable
from erp_pipelines.resources import ErpDatabase
from erp_pipelines_tests.support.databases import new_database

KEY = lock_key("session_setup_test")


@pytest.fixture(params=["18", "15"])
def erp_url(request: pytest.FixtureRequest) -> str:
    """A fresh database on each major: the lock's one-statement SET LOCAL relies on the implicit
    transaction block of a multi-statement query."""
    return new_database(request.getfixturevalue("pg_server" if request.param == "18" else "pg15_server"))


def _settings(conn: psycopg.Connection) -> dict[str, str]:
    names = ("lock_timeout", "statement_timeout", "DateStyle", "IntervalStyle", "extra_float_digits")
    values = conn.execute("SELECT " + ", ".join(f"current_setting('{n}')" for n in names)).fetchone()
    return dict(zip(names, values, strict=True))


@pytest.mark.parametrize("schema", ["public", 'Odd "Tenant" 1'])
def test_erp_connection_has_every_setting_and_no_open_transaction(erp_url, conn, schema):
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    db = ErpDatabase(url=erp_url, db_schema=schema, lock_timeout_ms=1234, statement_timeout_ms=56789)
    with erp_connection(db, "test", {}) as c:
        assert not c.autocommit
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert c.execute("SELECT current_schema()").fetchone()[0] == schema
        assert _settings(c) == {
            "lock_timeout": "1234ms",
            "statement_timeout": "56789ms",
            "DateStyle": "ISO, MDY",
            "IntervalStyle": "postgres",
            "extra_float_digits": "1",
        }
        c.rollback()
    with db.connect("test", autocommit=True) as c:
        assert c.autocommit
        assert _settings(c)["lock_timeout"] == "1234ms"


def _waiting(conn: psycopg.Connection, application_name: str) -> bool:
    return conn.execute(
        "SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = %s AND wait_event = 'advisory'",
        (application_name,),
    ).fetchone()[0]


@contextmanager
def _waiting_for_the_lock(erp_url: str, conn: psycopg.Connection, purpose: str, step) -> Iterator[threading.Thread]:
    """Hold KEY's lock, start `step` in a thread and return once its connection (application_name
    erp-pipelines:<purpose>) waits for the lock; the lock is released on leaving."""
    with psycopg.connect(erp_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtext(%s))", (KEY,))
        worker = threading.Thread(target=step)
        worker.start()
        deadline = time.monotonic() + 20
        while not _waiting(conn, f"erp-pipelines:{purpose}"):
            assert time.monotonic() < deadline, "the step never waited for the lock"
            time.sleep(0.05)
        try:
            yield worker
        finally:
            holder.execute("SELECT pg_advisory_unlock(hashtext(%s))", (KEY,))
            worker.join(20)


def test_a_rollup_waits_for_its_lock_past_lock_timeout_then_has_lock_timeout_again(erp_url, conn):
    db = ErpDatabase(url=erp_url, lock_timeout_ms=200)
    seen: dict[str, object] = {}

    def rollup() -> None:
        with erp_connection(db, "lock-wait-test", {}) as c:
            with write_transaction(c, KEY):
                seen["inside"] = c.execute("SELECT current_setting('lock_timeout')").fetchone()[0]
            seen["autocommit_after"] = c.autocommit
            seen["held_after"] = c.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            ).fetchone()[0]

    with _waiting_for_the_lock(erp_url, conn, "lock-wait-test", rollup) as worker:
        time.sleep(1.0)  # five times its lock_timeout: a bounded wait would have failed by now
        assert worker.is_alive() and _waiting(conn, "erp-pipelines:lock-wait-test")
    assert seen == {"inside": "200ms", "autocommit_after": False, "held_after": 0}


def test_retentions_wait_for_the_lock_is_bounded_by_lock_timeout(erp_url):
    db = ErpDatabase(url=erp_url, lock_timeout_ms=200)
    with psycopg.connect(erp_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtext(%s))", (KEY,))
        with erp_connection(db, "test", {}) as c:
            with pytest.raises(psycopg.errors.LockNotAvailable):
                with write_transaction(c, KEY, lock_timeout=True):
                    pytest.fail("the transaction must not start without the lock")
            assert not c.autocommit
            assert c.execute("SELECT 1").fetchone() == (1,)  # the connection is still usable
        holder.execute("SELECT pg_advisory_unlock(hashtext(%s))", (KEY,))


def test_a_connection_lost_while_waiting_for_the_lock_is_reported_as_lost(erp_url, conn):
    """The wait runs in autocommit; switching back must not hide the lost connection behind another error:
    DatabaseUnavailable is what makes Dagster retry the step."""
    db = ErpDatabase(url=erp_url)
    seen: dict[str, BaseException] = {}

    def rollup() -> None:
        try:
            with erp_connection(db, "lost-wait-test", {}) as c, write_transaction(c, KEY):
                pass
        except BaseException as exc:  # noqa: BLE001 - the test inspects what came out
            seen["error"] = exc

    with _waiting_for_the_lock(erp_url, conn, "lost-wait-test", rollup) as worker:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                     ("erp-pipelines:lost-wait-test",))
        worker.join(20)
    assert isinstance(seen.get("error"), DatabaseUnavailable), repr(seen.get("error"))
