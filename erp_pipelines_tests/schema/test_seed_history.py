"""The seed ERP's own history shape runs end to end: a later migration touching a schema this database lacks
and one applied by hand, both recorded by the operator (`mark_applied`), trusted where they do not replay."""

from __future__ import annotations

import psycopg
import pytest

from erp_pipelines.demo.state import load_drifted_state
from erp_pipelines_tests.support.history_folders import checks
from erp_pipelines_tests.support.prisma_cli import assert_prisma_up_to_date
from erp_pipelines_tests.support.seed_history import (
    BY_HAND_MIGRATION,
    OTHER_SCHEMA_MIGRATION,
    run_schema_sync,
    seed_folder,
)

HAND_RECORDED = {"mark_applied": [OTHER_SCHEMA_MIGRATION, BY_HAND_MIGRATION]}


# Both starts on 18, the drifted (harder) one on 15 too: the Prisma CLI and two runs make each case ~35 s.
@pytest.mark.parametrize(("pg_major", "start"), [("18", "empty"), ("18", "drifted"), ("15", "drifted")])
def test_seed_history_with_hand_recorded_migrations_runs_and_prisma_says_up_to_date(erp_url, tmp_path, pg_major,
                                                                                    start):
    if start == "drifted":
        with psycopg.connect(erp_url, autocommit=True) as conn:
            assert load_drifted_state(conn)
    folder = seed_folder(tmp_path / "migrations")
    result = run_schema_sync(erp_url, folder, HAND_RECORDED)
    assert result.success
    found = checks(result)
    failed = {k: c.description for k, c in found.items() if not c.passed}
    assert list(failed) == ["tables_present"], failed
    tables = found["tables_present"]
    assert tables.severity.value == "WARN"  # shown, never blocking
    unverifiable = tables.metadata["not_verifiable"].value
    assert list(unverifiable) == [OTHER_SCHEMA_MIGRATION]
    assert unverifiable[OTHER_SCHEMA_MIGRATION].startswith("not verifiable: ")
    assert 'schema "erp" does not exist' in unverifiable[OTHER_SCHEMA_MIGRATION]
    assert "a range that replays" not in (tables.description or "")
    assert_prisma_up_to_date(erp_url, folder)
    again = run_schema_sync(erp_url, folder)  # a second run: the records are trusted, nothing to plan
    assert again.success and [k for k, c in checks(again).items() if not c.passed] == ["tables_present"]
    second = again.asset_materializations_for_node("erp_schema")
    assert all(m.metadata["statements"].value == 0 for m in second)


@pytest.mark.parametrize("pg_major", ["18"])
def test_seed_migration_we_would_apply_that_cannot_run_is_an_error_and_writes_nothing(erp_url, tmp_path, pg_major):
    folder = seed_folder(tmp_path / "migrations")
    result = run_schema_sync(erp_url, folder, {"mark_applied": [BY_HAND_MIGRATION]})
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.message
    assert OTHER_SCHEMA_MIGRATION in failure and 'schema "erp" does not exist' in failure
    assert "mark_applied" in failure and "range that replays" not in failure
    with psycopg.connect(erp_url) as conn:  # refused before any write: not even Prisma's table or a baseline row
        assert conn.execute("SELECT to_regclass('_prisma_migrations')").fetchone()[0] is None
