"""Child processes to kill and backends to find: the reliability suite's way of stopping a step mid-transaction.

Everything is real: the step runs in a separate Python process (`python -c ...`) against the session's
embedded PostgreSQL, and is killed with SIGKILL or has its backend terminated with pg_terminate_backend.
To kill it at a known point, the test holds a lock the step needs; the step blocks mid-transaction, the test
sees it waiting in pg_stat_activity (by application_name), and strikes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import psycopg

from erp_pipelines.embedded import PROJECT_ROOT

SAFETY_TIMEOUT_S = 120  # a safety limit only: nothing is asserted about how long anything takes


def spawn(code: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Run `code` in a fresh Python process (its own process group); output goes to temp files (a pipe
    nobody reads would block the child once Dagster's logs fill it)."""
    full_env = {**os.environ, **(env or {})}
    out = tempfile.TemporaryFile("w+")
    err = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=PROJECT_ROOT,
        env=full_env,
        stdout=out,
        stderr=err,
        text=True,
        start_new_session=True,
    )
    proc.out_file, proc.err_file = out, err  # type: ignore[attr-defined]
    return proc


def _output(proc: subprocess.Popen) -> tuple[str, str]:
    texts = []
    for f in (proc.out_file, proc.err_file):  # type: ignore[attr-defined]
        f.seek(0)
        texts.append(f.read())
    return texts[0], texts[1]


def finish(proc: subprocess.Popen, timeout: float = SAFETY_TIMEOUT_S) -> tuple[int, str, str]:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        out, err = _output(proc)
        raise AssertionError(f"child did not finish within the safety limit:\n{out}\n{err[-5000:]}") from None
    out, err = _output(proc)
    return proc.returncode, out, err


def wait_for_blocked_backend(
    conn: psycopg.Connection, app_prefix: str, proc: subprocess.Popen | None = None
) -> int:
    """PID of the backend whose application_name starts with `app_prefix` once it waits on a lock."""
    deadline = time.monotonic() + SAFETY_TIMEOUT_S
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s AND wait_event_type = 'Lock' "
            "AND datname = current_database()",
            (app_prefix + "%",),
        ).fetchone()
        if row:
            return row[0]
        if proc is not None and proc.poll() is not None:
            out, err = _output(proc)
            raise AssertionError(f"child exited ({proc.returncode}) before blocking:\n{out}\n{err[-5000:]}")
        time.sleep(0.05)
    raise AssertionError(f"no backend {app_prefix!r} blocked within the safety limit")


def wait_backend_gone(conn: psycopg.Connection, pid: int) -> None:
    deadline = time.monotonic() + SAFETY_TIMEOUT_S
    while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
        assert time.monotonic() < deadline, f"backend {pid} still alive"
        time.sleep(0.05)


def strike(how: str, proc: subprocess.Popen, conn: psycopg.Connection, backend_pid: int) -> None:
    """Kill the run process with SIGKILL, or terminate its backend, while it is blocked mid-transaction."""
    if how == "kill9":
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=SAFETY_TIMEOUT_S)
    else:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (backend_pid,)).fetchone()[0]
