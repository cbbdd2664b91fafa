"""Which migrations make the wanted schema: `replay_from` through the baseline, then the later ones applied.

The default baseline is the demo ERP's squashed one; with `replay_from` unset the baseline alone is replayed
(a squashed baseline), with `replay_from` = the first migration the whole unsquashed history is.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from erp_pipelines import settings
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


def replay_range(
    baseline: str | None, replay_from: str | None, asset: str, env: settings.Env | None = None
) -> tuple[str, str | None]:
    """(baseline, replay_from) for `asset`: its run config, else ERP_BASELINE_MIGRATION / ERP_REPLAY_FROM (one
    setting both schema assets read), else the default baseline alone. Run config and environment disagreeing
    is an error naming both."""
    chosen = []
    for key, given, variable, from_env in (
        ("baseline_migration", baseline, settings.BASELINE_MIGRATION, settings.baseline_migration(env)),
        ("replay_from", replay_from, settings.REPLAY_FROM, settings.replay_from(env)),
    ):
        if given and from_env and given != from_env:
            raise ErpPipelinesError(
                f"Two settings disagree on the replay range: run config {key}={given!r} of {asset} and "
                f"environment variable {variable}={from_env!r}.",
                where=f"run config of {asset} ({key}) and environment variable {variable}",
                fix=f"Keep one: {variable} sets it for both erp_schema and prisma_migration_history; remove {key} "
                "from the run config, or make the two equal.",
            )
        chosen.append(given or from_env or None)
    return chosen[0] or DEFAULT_BASELINE, chosen[1]


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
