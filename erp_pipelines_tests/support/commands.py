"""The project's commands run as a user runs them: `erp-pipelines ...` and `dagster ...` in real processes.

Each gets only the environment the test gives (plus PATH and the like): no DAGSTER_*, ERP_* or PRISMA_*
setting of the machine running the tests leaks in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from erp_pipelines.embedded import PROJECT_ROOT

COMMAND_TIMEOUT_S = 600  # a safety limit only


def clean_env(env: dict[str, str]) -> dict[str, str]:
    """os.environ without the project's settings, plus `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "ERP_", "PRISMA_"))}
    return {**base, **env}


def erp_pipelines(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`erp-pipelines ARGS` (as `python -m erp_pipelines.cli`)."""
    return subprocess.run(
        [sys.executable, "-m", "erp_pipelines.cli", *args],
        cwd=PROJECT_ROOT,
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )


def dagster(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`dagster ARGS` from this virtualenv."""
    executable = Path(sys.executable).parent / "dagster"
    return subprocess.run(
        [str(executable), *args],
        cwd=PROJECT_ROOT,
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )


def exported(env_output: str) -> dict[str, str]:
    """The variables `eval "$(erp-pipelines env)"` sets, read back from a real shell (a password is exported as
    `"$(cat FILE)"`, so only a shell knows its value)."""
    names = [line.removeprefix("export ").partition("=")[0] for line in env_output.splitlines()
             if line.startswith("export ")]
    script = env_output + '\nfor n in "$@"; do printf "%s\\0%s\\0" "$n" "${!n}"; done'
    out = subprocess.run(["bash", "-c", script, "bash", *names], capture_output=True, text=True, check=True,
                         timeout=COMMAND_TIMEOUT_S).stdout
    parts = out.split("\0")[:-1]
    return dict(zip(parts[0::2], parts[1::2], strict=True))
