"""`erp-pipelines env` without a password on the screen: secrets go to files only the user can read.

Why: `eval "$(erp-pipelines env)"` is how a shell gets the variables `dagster ...` commands need, and printing
them put Dagster's storage password (and a password inside ERP_DATABASE_URL) on the terminal, in scrollback
and in CI logs. A password-bearing value is written to `<DAGSTER_HOME>/secrets/<NAME>` (folder 0700, file
0600) and printed as `export NAME="$(cat '<file>')"`: eval sets the same value, the output shows none.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from erp_pipelines import settings

SECRETS_DIR = "secrets"


def holds_password(name: str, value: str) -> bool:
    """True for a non-empty password variable, or a URL with a password in it."""
    if not value:
        return False
    if name == settings.DAGSTER_PG_PASSWORD:
        return True
    try:
        return bool(urlsplit(value).password)
    except ValueError:
        return "@" in value  # unparseable: treat as secret rather than print it


def write_secret(folder: Path, name: str, value: str) -> Path:
    """`folder/secrets/name` with `value`, readable only by the user (written through a 0600 descriptor)."""
    secrets_dir = folder / SECRETS_DIR
    secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(secrets_dir, 0o700)
    path = secrets_dir / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value)
    os.chmod(path, 0o600)
    return path


def export_lines(env: Mapping[str, str], folder: Path) -> list[str]:
    """`export NAME=value` lines; a password-bearing value as `export NAME="$(cat 'FILE')"`."""
    lines = []
    for name, value in env.items():
        if holds_password(name, value):
            path = write_secret(folder, name, value)
            lines.append(f'export {name}="$(cat {shlex.quote(str(path))})"')
        else:
            lines.append(f"export {name}={shlex.quote(value)}")
    return lines
