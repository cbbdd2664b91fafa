"""CI fails on string-formatted SQL: ruff's flake8-bandit S608 runs over the code, and is proven to bite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from erp_pipelines.embedded import PROJECT_ROOT

RUFF = Path(sys.executable).parent / "ruff"


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(RUFF), "check", "--no-cache", *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=120)


def test_s608_is_selected_and_the_code_passes_it():
    config = (PROJECT_ROOT / "pyproject.toml").read_text()
    assert '"S608"' in config
    result = _ruff("--select", "S608", "erp_pipelines", "erp_pipelines_tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_s608_flags_sql_built_by_formatting_values(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def f(conn, name, days):\n"
        "    conn.execute(f\"DELETE FROM samples WHERE name = '{name}'\")\n"
        "    conn.execute(\"SELECT * FROM t WHERE d < %s\" % days)\n"
        "    conn.execute(\"UPDATE t SET x = {}\".format(days))\n"
    )
    good = tmp_path / "good.py"
    good.write_text(
        "from psycopg import sql\n\n\n"
        "def f(conn, name, days):\n"
        "    conn.execute(\"DELETE FROM samples WHERE name = %s\", (name,))\n"
        "    conn.execute(sql.SQL(\"SELECT * FROM {} WHERE d < %s\").format(sql.Identifier(name)), (days,))\n"
    )
    flagged = _ruff("--isolated", "--select", "S608", str(bad))
    assert flagged.returncode != 0 and flagged.stdout.count("S608") == 3, flagged.stdout
    assert _ruff("--isolated", "--select", "S608", str(good)).returncode == 0
