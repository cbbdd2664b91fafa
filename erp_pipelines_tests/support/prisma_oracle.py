"""The independent oracle for schema tests: a migrations folder applied the way `prisma migrate deploy` runs it.

Why: the project's result must be judged against something that does not share its code. Prisma's native
schema engine sends each migration.sql, unsplit, as one simple query, in `localeCompare` order of the folder
names. Here each script goes through psycopg's `execute()` with no parameters on an autocommit connection:
psycopg then sends it with the simple query protocol (the extended protocol refuses more than one statement,
so a multi-statement script running at all shows which protocol carried it), and PostgreSQL runs it as one
implicit transaction unless the script has its own BEGIN/COMMIT — exactly what Prisma's engine gets.
The folder is read here from the files themselves; only the sort key is the project's (`order.collation_key`,
itself tested against Prisma's order in unit/test_prisma_order.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import psycopg

from erp_pipelines.prisma.order import collation_key


def folder_scripts(folder: Path) -> list[tuple[str, str]]:
    """(folder name, migration.sql text) in Prisma's order."""
    names = sorted((p.name for p in Path(folder).iterdir() if (p / "migration.sql").is_file()), key=collation_key)
    return [(name, (Path(folder) / name / "migration.sql").read_text(encoding="utf-8")) for name in names]


def apply_like_prisma(url: str, folder: Path, only: Iterable[str] | None = None) -> list[str]:
    """Run each migration.sql (or only those named in `only`) as one simple query; return the names run.
    A failing script raises psycopg's error with the migration's name added as a note."""
    wanted = None if only is None else set(only)
    ran = []
    with psycopg.connect(url, autocommit=True) as conn:
        for name, text in folder_scripts(folder):
            if wanted is not None and name not in wanted:
                continue
            try:
                conn.execute(text)  # no parameters: the simple query protocol, the whole script at once
            except psycopg.Error as exc:
                exc.add_note(f"while applying migration {name} like prisma migrate deploy")
                raise
            ran.append(name)
    return ran
