"""The commands of the documents, as written: fenced bash blocks marked with an HTML comment.

A block belongs to a journey when the line before its opening fence is `<!-- journey -->` (or
`<!-- journey: NAME -->` for a named part). The journey test runs the blocks' text as it stands in
README.md and docs/production.md, so a document that stops working fails a test.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from erp_pipelines.embedded import PROJECT_ROOT
from erp_pipelines_tests.support.commands import clean_env

_BLOCK = re.compile(r"^<!-- (journey(?:: [^>]+?)?) -->\n```bash\n(.*?)^```$", re.M | re.S)


def blocks(path: Path, tag: str = "journey") -> list[str]:
    """The bash blocks of `path` marked `<!-- TAG -->`, in document order."""
    return [body for found, body in _BLOCK.findall(path.read_text()) if found == tag]


def run_block(body: str, env: dict[str, str], timeout_s: int = 600) -> subprocess.CompletedProcess:
    """One block, as a shell runs it from the project's root (stop at the first failing command)."""
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", body], cwd=PROJECT_ROOT, env=clean_env(env),
        capture_output=True, text=True, timeout=timeout_s,
    )
