"""Real, temporary Dagster instances for tests, each from a copy of one empty instance folder.

Why: `dg.instance_for_test()` creates its SQLite run, event-log and schedule storages and runs their schema
migrations on every call, 1.5-2 s per test on the shared 2-core machine, most of the `instance` fixture's
cost in the rollup and automation tests. Copying a folder whose storages were created once (before any
run) takes ~0.1 s. The instance is the same real `DagsterInstance` on its own folder: nothing is shared
between tests, and `instance_for_test` still writes the instance's dagster.yaml and sets DAGSTER_HOME.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg


@contextmanager
def empty_instance_folder() -> Iterator[Path]:
    """A folder holding an instance whose storages exist and are empty; removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="erp-dagster-template-"))
    try:
        with dg.instance_for_test(temp_dir=str(folder)):
            pass
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def instance_from(template: Path) -> Iterator[dg.DagsterInstance]:
    """`dg.instance_for_test` on a fresh copy of `template` (see `empty_instance_folder`)."""
    folder = Path(tempfile.mkdtemp(prefix="erp-dagster-"))
    try:
        shutil.copytree(template, folder, dirs_exist_ok=True)
        with dg.instance_for_test(temp_dir=str(folder)) as instance:
            yield instance
    finally:
        shutil.rmtree(folder, ignore_errors=True)
