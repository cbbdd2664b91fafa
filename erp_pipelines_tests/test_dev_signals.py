"""`erp-pipelines dev` (make dev) stops on SIGTERM and SIGINT, with its webserver and daemon: real processes.

The background case is the one that broke: a shell starting `make dev &` sets SIGINT to "ignored", and
`dagster dev` maps SIGTERM to whatever SIGINT does, so it ignored both (erp_pipelines/dev_server.py).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from erp_pipelines.embedded import PROJECT_ROOT
from erp_pipelines_tests.support.commands import clean_env
from erp_pipelines_tests.support.databases import new_database

SAFETY_S = 240  # a safety limit only: nothing is asserted about how long anything takes
MARK = "ERP_PIPELINES_DEV_SIGNAL_TEST"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def marked_processes(mark: str) -> list[int]:
    """PIDs of live processes whose environment carries `MARK=mark` (the dev command and all it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"{MARK}={mark}".encode() in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


def wait_until_serving(port: int, proc: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + SAFETY_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"dev exited ({proc.returncode}) before serving:\n{_read(log)[-4000:]}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"the UI did not answer within the safety limit:\n{_read(log)[-4000:]}")


def _read(log) -> str:
    log.seek(0)
    return log.read()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what a non-interactive shell does for `make dev &`


@pytest.mark.slow
@pytest.mark.parametrize(("how", "signum"), [("in the background", signal.SIGTERM),
                                             ("in a terminal", signal.SIGINT)], ids=["SIGTERM-background", "SIGINT-terminal"])
def test_dev_stops_with_its_webserver_and_daemon_on_a_signal(how, signum, pg_server, erp_url, server_state):
    port, mark = free_port(), uuid.uuid4().hex
    env = clean_env({"ERP_DATABASE_URL": erp_url, "DAGSTER_PG_URL": new_database(pg_server),
                     "ERP_PIPELINES_STATE_DIR": str(server_state), MARK: mark})
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "erp_pipelines.cli", "dev", "--port", str(port)], cwd=PROJECT_ROOT, env=env,
            stdout=log, stderr=subprocess.STDOUT, text=True,
            preexec_fn=_ignore_sigint if how == "in the background" else None,
        )
        try:
            wait_until_serving(port, proc, log)
            assert len(marked_processes(mark)) >= 3  # our command, dagster dev, its webserver and daemon
            proc.send_signal(signum)
            assert proc.wait(timeout=SAFETY_S) == 0, _read(log)[-4000:]
            assert marked_processes(mark) == [], _read(log)[-4000:]
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.1", port)) != 0  # nobody listens any more
        finally:
            for pid in marked_processes(mark):
                os.kill(pid, signal.SIGKILL)
            if proc.poll() is None:
                proc.kill()
