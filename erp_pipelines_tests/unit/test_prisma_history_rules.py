"""Which `_prisma_migrations` rows the history step writes and which migrations it runs (`plan_history`),
decided without a database, and Prisma's checksum comparison."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.prisma.history import HistoryRow, checksum_matches, unpadded_checksum
from erp_pipelines.prisma.history_plan import RowAction, RunMode, plan_history
from erp_pipelines.prisma.migrations import Migration, MigrationsFolder

T = datetime(2026, 1, 1, tzinfo=UTC)


def _m(name: str, script: str | None = None) -> Migration:
    return Migration(name=name, path=Path(f"/m/{name}/migration.sql"), raw=(script or f"SELECT 1; -- {name}\n").encode())


def _row(id_: str, name: str, finished: bool = False, rolled_back: bool = False) -> HistoryRow:
    return HistoryRow(id_, name, "c", T, T if finished else None, T if rolled_back else None, None, 0)


LEGACY, BASE = _m("20250901_legacy"), _m("20251201_0000_baseline_init")
LATER, OTHER = _m("20251215_x"), _m("20251216_y")
LATE = _m("20251115_late_branch")  # sorts before the baseline
FOLDER = MigrationsFolder(Path("/m"), (LEGACY, LATE, BASE, LATER, OTHER))
APPLIED_BASE = [_row("b0", LEGACY.name, finished=True), _row("b1", BASE.name, finished=True)]


def _plan(rows, **config):
    return plan_history(FOLDER, BASE.name, rows, table_exists=True, **config)


def test_first_baselining_records_everything_up_to_the_baseline_and_resolves_their_failed_attempts():
    rows = [_row("1", LEGACY.name), _row("2", LATER.name), _row("4", BASE.name, rolled_back=True)]
    plan = _plan(rows, resolve_rolled_back=[LATER.name])
    assert plan.first_baselining
    assert [(w.action, w.migration) for w in plan.writes] == [
        (RowAction.ROLL_BACK_COVERED, LEGACY.name), (RowAction.ROLL_BACK_NAMED, LATER.name),
        (RowAction.BASELINE, LEGACY.name), (RowAction.BASELINE, LATE.name), (RowAction.BASELINE, BASE.name)]
    assert [a.name for a in plan.applies] == [LATER.name, OTHER.name]


def test_an_unresolved_failed_attempt_blocks_every_apply_like_p3009():
    plan = _plan([*APPLIED_BASE, _row("2", LATER.name)])
    assert plan.blocked_by == (LATER.name,) and plan.applies == ()
    assert "P3009" in plan.text()


def test_after_the_first_baselining_a_late_merged_migration_is_applied_not_recorded():
    plan = _plan(APPLIED_BASE)
    assert not plan.first_baselining and plan.writes == ()
    assert [(a.name, a.late) for a in plan.applies] == [(LATE.name, True), (LATER.name, False), (OTHER.name, False)]
    assert "late-merged" in plan.text()


def test_nothing_to_do_once_everything_is_recorded():
    rows = [*APPLIED_BASE, _row("2", LATE.name, finished=True), _row("3", LATER.name, rolled_back=True),
            _row("4", LATER.name, finished=True), _row("5", OTHER.name, finished=True)]
    plan = _plan(rows)
    assert not plan.changes_anything() and plan.lines() == [
        "nothing to do: every migration of the folder is recorded as applied"]


def test_mark_applied_rolls_back_failed_attempts_first_and_skips_the_apply():
    plan = _plan([*APPLIED_BASE, _row("2", LATER.name)], mark_applied=[LATER.name])
    assert [(w.action, w.migration, w.rolled_back_ids) for w in plan.writes] == [
        (RowAction.MARK_APPLIED, LATER.name, ("2",))]
    assert [a.name for a in plan.applies] == [LATE.name, OTHER.name]


@pytest.mark.parametrize(("rows", "config", "code"), [
    ([*APPLIED_BASE, _row("2", LATER.name, finished=True)], {"mark_applied": [LATER.name]}, "P3008"),
    (APPLIED_BASE, {"resolve_rolled_back": [LATER.name]}, "P3011"),
    ([*APPLIED_BASE, _row("2", LATER.name, finished=True)], {"resolve_rolled_back": [LATER.name]}, "P3012"),
    ([*APPLIED_BASE, _row("2", LATER.name, rolled_back=True)], {"resolve_rolled_back": [LATER.name]}, "P3012"),
])
def test_resolutions_prisma_refuses_are_refused_with_the_fix(rows, config, code):
    with pytest.raises(ErpPipelinesError) as err:
        _plan(rows, **config)
    message = str(err.value)
    assert code in message and "Nothing was written" in message and "What to do: Remove" in message
    assert "edit" not in message.lower()


def test_each_kind_of_script_is_planned_with_how_it_runs():
    folder = MigrationsFolder(Path("/m"), (
        BASE, _m("20251202_a", "ALTER TABLE t ADD c int; ALTER TABLE t ADD d int;"),
        _m("20251203_b", "BEGIN; ALTER TABLE t ADD e int; COMMIT;"),
        _m("20251204_c", "CREATE INDEX CONCURRENTLY i ON t (c);"),
        _m("20251205_d", "CREATE TABLE u (id int); CREATE INDEX CONCURRENTLY j ON u (id);"),
        _m("20251206_e", "SELECT 1;")))
    plan = plan_history(folder, BASE.name, [], table_exists=False)
    assert plan.create_table and [w.action for w in plan.writes] == [RowAction.BASELINE]
    assert [a.mode for a in plan.applies] == [RunMode.ONE_TRANSACTION, RunMode.AS_PRISMA, RunMode.AS_PRISMA,
                                              RunMode.REFUSED]  # nothing after a refused one
    assert plan.applied_names() == ["20251202_a", "20251203_b", "20251204_c"]


def test_checksums_match_the_file_or_its_line_end_twin_only():
    lf = Migration("a", Path("/m/a/migration.sql"), b"CREATE TABLE a (id int);\n")
    crlf = Migration("a", Path("/m/a/migration.sql"), b"CREATE TABLE a (id int);\r\n")
    assert checksum_matches(lf, crlf.checksum) and checksum_matches(crlf, lf.checksum)
    assert not checksum_matches(lf, Migration("a", lf.path, b"CREATE TABLE a (id bigint);\n").checksum)


def _with_a_small_byte(prefix: bytes) -> bytes:
    """A script whose SHA-256 has a byte below 0x10, so old Prisma's unpadded hex is shorter than 64."""
    for i in range(1000):
        data = prefix + f"-- {i}\n".encode()
        if any(b < 0x10 for b in hashlib.sha256(data).digest()):
            return data
    raise AssertionError("no such script")


def test_unpadded_checksums_of_old_prisma_versions_match_and_still_see_edits():
    data = _with_a_small_byte(b"CREATE TABLE a (id int);\n")
    migration = Migration("a", Path("/m/a/migration.sql"), data)
    old = unpadded_checksum(data)
    assert len(old) < 64 and old != migration.checksum
    assert checksum_matches(migration, old)
    assert checksum_matches(migration, unpadded_checksum(data.replace(b"\n", b"\r\n")))  # old and from Windows
    edited = Migration("a", migration.path, data.replace(b"int", b"bigint"))
    assert not checksum_matches(edited, old)
