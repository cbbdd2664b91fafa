"""A long unsquashed history (150+ migrations, every kind of script) applied by the history step alone, the way
`prisma migrate deploy` would apply it, then judged by `prisma migrate status`."""

from __future__ import annotations

import statistics
from collections import Counter

from erp_pipelines.prisma.history import record_history
from erp_pipelines.prisma.migrations import ScriptKind, read_migrations_folder
from erp_pipelines.resources import ErpDatabase
from erp_pipelines_tests.support.prisma_cli import assert_prisma_up_to_date
from erp_pipelines_tests.support.realistic_history import write_realistic_history


def test_every_migration_after_the_first_is_applied_in_prisma_order_and_prisma_agrees(erp_url, conn, pg_major,
                                                                                     tmp_path):
    folder_path = write_realistic_history(tmp_path, contrib=pg_major == "15")
    folder = read_migrations_folder(folder_path)
    first = folder.migrations[0]
    with conn.transaction():
        conn.execute(first.sql)  # the database as the first migration left it
    result = record_history(ErpDatabase(url=erp_url), folder, first.name, log=lambda _: None)
    assert result.failed is None and not result.blocked_by
    assert result.applied == folder.names()[1:]
    kinds = Counter(o.kind for o in result.outcomes)
    assert kinds[ScriptKind.EXPLICIT_TRANSACTION] and kinds[ScriptKind.NON_TRANSACTIONAL]
    assert kinds[ScriptKind.IMPLICIT_TRANSACTION] and kinds[ScriptKind.SINGLE_STATEMENT]
    held_ms = sorted(o.lock_held_s * 1000 for o in result.outcomes)
    print(f"PG{pg_major}: {len(held_ms)} migrations; Prisma's lock held per migration: median "
          f"{statistics.median(held_ms):.1f} ms, max {held_ms[-1]:.1f} ms; kinds { {k.name: v for k, v in kinds.items()} }")
    assert_prisma_up_to_date(erp_url, folder_path)
    again = record_history(ErpDatabase(url=erp_url), folder, first.name, log=lambda _: None)
    assert not again.changed() and not again.checksum_mismatches
