"""`erp-pipelines dev` / `make dev`: run `dagster dev` so that SIGTERM and SIGINT stop all of it.

Why: `dagster dev` was exec'd in place. Started in the background (`make dev &` in a script, a service
manager), a shell sets SIGINT to "ignored", which survives exec; `dagster dev` maps SIGTERM to whatever SIGINT
does (dagster._utils.interrupts.setup_interrupt_handlers, "for k8s"), so it ignored SIGTERM too and never
stopped. Here we install our own SIGTERM/SIGINT handlers first (a handled signal is reset to the default in
a child, an ignored one is not), then start `dagster dev` in a process group of its own; a signal to us is
forwarded to that whole group, as a terminal's Ctrl-C would be, and whatever has not stopped after a grace
period is killed, so no process of it outlives us.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

GRACE_S = 20.0  # how long dagster dev may take to stop its webserver and daemon before SIGKILL
POLL_S = 0.2


def _signal_group(pgid: int, signum: int) -> bool:
    """Send `signum` to the group; False when no process of it is left."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    return True


def run_dagster_dev(argv: list[str]) -> int:
    """Run `argv` (dagster dev ...) in its own process group until it exits or we are told to stop.

    Returns dagster dev's exit status, or 0 when it was stopped by SIGTERM/SIGINT."""
    stop: dict[str, float] = {}
    group: list[int] = []

    def forward(signum: int, _frame) -> None:
        stop.setdefault("deadline", time.monotonic() + GRACE_S)
        for pgid in group:
            _signal_group(pgid, signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}  # before the child starts
    try:
        proc = subprocess.Popen(argv, start_new_session=True)
        group.append(proc.pid)
        if "deadline" in stop:  # told to stop while it was starting
            _signal_group(proc.pid, signal.SIGTERM)
        while proc.poll() is None:
            time.sleep(POLL_S)
            if "deadline" in stop and time.monotonic() > stop["deadline"]:
                _signal_group(proc.pid, signal.SIGKILL)
        # dagster dev is gone; its webserver and daemon share its group: stop what is left of it
        if _signal_group(proc.pid, signal.SIGTERM):
            deadline = time.monotonic() + GRACE_S
            while _signal_group(proc.pid, 0) and time.monotonic() < deadline:
                time.sleep(POLL_S)
            _signal_group(proc.pid, signal.SIGKILL)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0 if "deadline" in stop else proc.returncode
