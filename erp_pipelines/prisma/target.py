"""Which migrations make the wanted schema: `replay_from` through the baseline, then the later ones applied.

The default baseline is the demo ERP's squashed one; with `replay_from` unset the baseline alone is replayed
(a squashed baseline), with `replay_from` = the first migration the whole unsquashed history is.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.prisma.migrations import Migration, MigrationsFolder

DEFAULT_BASELINE = "20251201_0000_baseline_init"


@dataclass(frozen=True)
class Target:
    before: tuple[Migration, ...]  # replay_from .. the migration before the baseline
    baseline: Migration
    applied_later: tuple[Migration, ...]  # after the baseline and recorded as applied

    @property
    def migrations(self) -> list[Migration]:
        return [*self.before, self.baseline, *self.applied_later]


def target(
    folder: MigrationsFolder, baseline: str, replay_from: str | None = None, applied: Collection[str] = ()
) -> Target:
    """The migrations to replay, in the folder's (Prisma's) order."""
    names = folder.names()
    end = names.index(folder.get(baseline).name)
    start = end if not replay_from else names.index(folder.get(replay_from).name)
    if start > end:
        raise ErpPipelinesError(
            f"replay_from {replay_from!r} comes after baseline_migration {baseline!r} in Prisma's order.",
            where="run config of erp_schema",
            fix="Set replay_from to a migration at or before the baseline (usually the first migration).",
        )
    later = tuple(m for m in folder.migrations[end + 1 :] if m.name in applied)
    return Target(tuple(folder.migrations[start:end]), folder.migrations[end], later)
