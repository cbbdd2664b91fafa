"""Real, temporary Dagster instances for tests, each from a copy of one empty instance folder.

Why: `dg.instance_for_test()` creates its SQLite run, event-log and schedule storages and runs their schema
migrations on every call, 1.5-2 s each on the shared 2-core machine: most of the `instance` fixture's cost in
the rollup and automation tests, and most of a generated example's cost where each example opens an
instance. Copying a folder whose storages were created once (before any run) takes ~0.1 s. The instance is
the same real `DagsterInstance` on a folder of its own: nothing is shared between tests or examples, and
`instance_for_test` still writes the instance's dagster.yaml and sets DAGSTER_HOME while it is open.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

_template: Path | None = None


def _empty_instance_folder() -> Path:
    """The folder of an instance whose storages exist and hold nothing; made once per process."""
    global _template
    if _template is None:
        folder = Path(tempfile.mkdtemp(prefix="erp-dagster-template-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        with dg.instance_for_test(temp_dir=str(folder)):
            pass
        _template = folder
    return _template


@contextmanager
def fresh_instance() -> Iterator[dg.DagsterInstance]:
    """What `dg.instance_for_test()` gives (a new, empty, real instance), on a copy of the empty folder."""
    folder = Path(tempfile.mkdtemp(prefix="erp-dagster-"))
    try:
        shutil.copytree(_empty_instance_folder(), folder, dirs_exist_ok=True)
        with dg.instance_for_test(temp_dir=str(folder)) as instance:
            yield instance
    finally:
        shutil.rmtree(folder, ignore_errors=True)
