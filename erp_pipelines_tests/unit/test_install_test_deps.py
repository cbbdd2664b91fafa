"""scripts/install-test-deps.sh on a machine without the packages and without root: it says what to run."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from erp_pipelines.settings import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "install-test-deps.sh"


def bare_machine(root: Path) -> dict[str, str]:
    """An empty system root and a PATH with only what the script itself calls (id, cat)."""
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for tool in ("id", "cat"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    return {"PATH": str(bin_dir), "TEST_DEPS_SYSROOT": str(root)}


def test_without_root_it_names_the_packages_and_the_apt_get_command():
    root = Path(tempfile.mkdtemp(prefix="bare-machine-"))  # under /tmp: readable by `nobody`
    try:
        root.chmod(0o755)
        env = [f"{k}={v}" for k, v in bare_machine(root).items()]
        as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
        done = subprocess.run(
            [*as_user, "env", "-i", *env, "/bin/bash", str(SCRIPT)], capture_output=True, text=True, timeout=60
        )
    finally:
        shutil.rmtree(root)
    assert done.returncode == 1, done.stderr
    packages = "chromium postgresql-15 postgresql-contrib-15 nodejs npm"
    assert f"not installed: {packages}" in done.stderr
    assert f"apt-get update && apt-get install -y {packages}" in done.stderr
