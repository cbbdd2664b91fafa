"""Node.js for tests that compare our behaviour with JavaScript's (Prisma is a Node program)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

INSTALL_HINT = "Install the test dependencies (make test installs node from Debian's packages: apt-get install nodejs npm)."


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"node is not installed. {INSTALL_HINT}")
    return node


def node_locale_sorted(names: list[str]) -> list[str]:
    """The names sorted by Node's `a.localeCompare(b)`, exactly as Prisma's CLI sorts migration folders."""
    script = (
        "let d='';process.stdin.on('data',c=>d+=c).on('end',()=>{const a=JSON.parse(d);"
        "a.sort((x,y)=>x.localeCompare(y));process.stdout.write(JSON.stringify(a));});"
    )
    out = subprocess.run([node_binary(), "-e", script], input=json.dumps(names), capture_output=True, text=True,
                         check=True, timeout=60)
    return json.loads(out.stdout)
