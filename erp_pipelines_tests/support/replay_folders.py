"""Small histories for the replay tests, written as folders and read back as the assets read them."""

from __future__ import annotations

from pathlib import Path

from erp_pipelines.prisma.migrations import Migration, read_migrations_folder
from erp_pipelines_tests.support.history_folders import write_folder


def history(root: Path, migrations: dict[str, str]) -> list[Migration]:
    """The migrations of a folder holding `migrations` (name -> migration.sql), in Prisma's order."""
    return read_migrations_folder(write_folder(root, migrations)).migrations
