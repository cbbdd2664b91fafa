"""Which `_prisma_migrations` rows the history step resolves or writes, decided without a database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from erp_pipelines.prisma.history import HistoryRow, _plan_writes, checksum_matches
from erp_pipelines.prisma.migrations import Migration

T = datetime(2026, 1, 1, tzinfo=UTC)


def _m(name: str) -> Migration:
    return Migration(name=name, path=Path(f"/m/{name}/migration.sql"), raw=f"-- {name}\n".encode())


def _row(id_: str, name: str, finished: bool = False, rolled_back: bool = False) -> HistoryRow:
    return HistoryRow(id_, name, "c", T, T if finished else None, T if rolled_back else None, None, 0)


LEGACY, BASE, LATER, OTHER = _m("20250901_legacy"), _m("20251201_0000_baseline_init"), _m("20251215_x"), _m("20251216_y")


def test_failed_attempts_of_covered_migrations_are_resolved_and_later_ones_only_when_named():
    rows = [_row("1", LEGACY.name), _row("2", LATER.name), _row("3", OTHER.name), _row("4", BASE.name, finished=True)]
    writes = _plan_writes(rows, [LEGACY, BASE], mark=[], resolve=[LATER.name])
    assert writes.auto_resolve == ("1",)
    assert writes.named_resolve == ("2",)
    assert [m.name for m in writes.baseline] == [LEGACY.name]  # the baseline itself is already applied


def test_nothing_to_write_once_everything_is_recorded():
    rows = [_row("1", LEGACY.name, finished=True), _row("2", BASE.name, finished=True),
            _row("3", LATER.name, rolled_back=True), _row("4", LATER.name, finished=True)]
    assert not _plan_writes(rows, [LEGACY, BASE], mark=[LATER], resolve=[LATER.name]).any()


def test_mark_applied_writes_only_what_is_not_applied_yet():
    writes = _plan_writes([_row("1", LATER.name)], [BASE], mark=[LATER, OTHER, BASE], resolve=[])
    assert [m.name for m in writes.mark] == [LATER.name, OTHER.name]  # BASE is written as the baseline


def test_checksums_match_the_file_or_its_line_end_twin_only():
    lf = Migration("a", Path("/m/a/migration.sql"), b"CREATE TABLE a (id int);\n")
    crlf = Migration("a", Path("/m/a/migration.sql"), b"CREATE TABLE a (id int);\r\n")
    assert checksum_matches(lf, crlf.checksum) and checksum_matches(crlf, lf.checksum)
    assert not checksum_matches(lf, Migration("a", lf.path, b"CREATE TABLE a (id bigint);\n").checksum)
