"""The history step's plan: every `_prisma_migrations` write and every migration it would run, as data.

"The plan is the run". `plan_history` is pure: from a migrations folder, the rows of `_prisma_migrations` as
read and the run config (`baseline_migration`, `mark_applied`, `resolve_rolled_back`) it decides, the way
`prisma migrate deploy` / `prisma migrate resolve` decide, what happens, and returns a `HistoryPlan` that
can be printed and tested. `record_history` computes it from rows read under Prisma's lock and carries it
out step by step; `erp-pipelines plan` prints the same value computed from rows read without writing.

Decisions (Prisma's own where there is one):
- first baselining (the baseline has no applied row yet): every migration up to the baseline is recorded as
  applied without running (`prisma migrate resolve --applied` rows), and failed attempts of those migrations
  are marked rolled back (the ERP's legacy case);
- afterwards, every folder migration without an applied row is applied in Prisma's order, wherever it sorts
  (a late-merged branch with an older timestamp included), as `prisma migrate deploy` does;
- an unresolved failed attempt blocks every apply (Prisma's P3009);
- `mark_applied` of an applied migration (P3008), `resolve_rolled_back` of a migration without a row (P3011)
  or without a failed attempt (P3012) are refused before anything is written.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.prisma.migrations import Migration, MigrationsFolder, ScriptKind

CONFIG = "run config of prisma_migration_history"


class RowAction(enum.Enum):
    """A write to `_prisma_migrations` that runs no migration script."""

    ROLL_BACK_COVERED = "mark the failed attempt rolled back (the baseline covers it; it blocked deploy, P3009)"
    ROLL_BACK_NAMED = "mark the failed attempt rolled back (resolve_rolled_back, like `prisma migrate resolve " \
                      "--rolled-back`)"
    BASELINE = "insert an applied row without running it (baseline, like `prisma migrate resolve --applied`)"
    MARK_APPLIED = "insert an applied row without running it (mark_applied, like `prisma migrate resolve --applied`)"


@dataclass(frozen=True)
class RowWrite:
    action: RowAction
    migration: str
    rolled_back_ids: tuple[str, ...] = ()  # failed attempts whose rolled_back_at is set

    def describe(self) -> str:
        extra = (f"; first marks its {len(self.rolled_back_ids)} failed attempt(s) rolled back, as Prisma does"
                 if self.rolled_back_ids and self.action is RowAction.MARK_APPLIED else "")
        return f"{self.migration}: {self.action.value}{extra}"


class RunMode(enum.Enum):
    """How a pending migration is run."""

    ONE_TRANSACTION = "in one transaction with its _prisma_migrations row (stronger than Prisma: all or nothing)"
    AS_PRISMA = ("as `prisma migrate deploy` runs it: the whole script as one query on an autocommit connection, "
                 "no lock_timeout/statement_timeout of ours, the row written as Prisma writes it (failed row included)")
    REFUSED = "refused: PostgreSQL cannot run it as one script (nothing after it is applied)"


_WHY = {
    ScriptKind.IMPLICIT_TRANSACTION: "several statements, no transaction control",
    ScriptKind.SINGLE_STATEMENT: "one transactional statement",
    ScriptKind.NON_TRANSACTIONAL: "a lone statement that cannot run in a transaction block",
    ScriptKind.EXPLICIT_TRANSACTION: "its own BEGIN/COMMIT decides what commits",
    ScriptKind.UNRUNNABLE: "a non-transactional statement among other statements",
}


@dataclass(frozen=True)
class PlannedApply:
    migration: Migration
    mode: RunMode
    late: bool = False  # sorts before the baseline, merged after the first baselining

    @property
    def name(self) -> str:
        return self.migration.name

    @property
    def why(self) -> str:
        return _WHY[self.migration.kind]

    def describe(self) -> str:
        late = (" [sorts before the baseline but has no row: a late-merged migration, applied as Prisma applies "
                "it]" if self.late else "")
        return f"{self.name}: {self.mode.value} — {self.why}{late}"


@dataclass(frozen=True)
class HistoryPlan:
    """What `prisma_migration_history` does, in order: create the table, the row writes, then the applies."""

    baseline: str
    first_baselining: bool
    create_table: bool
    writes: tuple[RowWrite, ...]
    applies: tuple[PlannedApply, ...]
    blocked_by: tuple[str, ...] = ()  # unresolved failed attempts: nothing is applied (P3009)

    def writes_of(self, action: RowAction) -> list[str]:
        return [w.migration for w in self.writes if w.action is action]

    def applied_names(self) -> list[str]:
        return [a.name for a in self.applies if a.mode is not RunMode.REFUSED]

    def changes_anything(self) -> bool:
        return bool(self.create_table or self.writes or self.applies)

    def lines(self) -> list[str]:
        """The plan as text, one line per write or migration, in the order they happen."""
        out = []
        if self.create_table:
            out.append("create _prisma_migrations (Prisma's own DDL)")
        out += [f"row  {w.describe()}" for w in self.writes]
        if self.blocked_by:
            out.append("apply nothing: unresolved failed attempts block `prisma migrate deploy` (P3009) and this step: "
                       + ", ".join(self.blocked_by) + " (resolve_rolled_back or mark_applied resolves them)")
        for i, step in enumerate(self.applies, start=1):
            out.append(f"run  {i}. {step.describe()}")
        return out or ["nothing to do: every migration of the folder is recorded as applied"]

    def text(self) -> str:
        return "\n".join(self.lines())


def _refuse(code: str, what: str, fix: str) -> ErpPipelinesError:
    return ErpPipelinesError(f"{what} (Prisma refuses this too: {code}). Nothing was written.", where=CONFIG, fix=fix)


def _check_resolutions(rows: Sequence, mark: Sequence[Migration], resolve: Sequence[str], done: set[str],
                       covered: set[str]) -> None:
    for migration in mark:
        if migration.name in done:
            raise _refuse("P3008", f"mark_applied names {migration.name}, which is already recorded as applied in "
                          "_prisma_migrations", f"Remove {migration.name} from mark_applied: it needs no record.")
    for name in resolve:
        if name in covered:
            continue  # the first baselining resolves failed attempts of covered migrations by itself
        attempts = [r for r in rows if r.name == name]
        if not attempts:
            raise _refuse("P3011", f"resolve_rolled_back names {name}, which has no row in _prisma_migrations: it "
                          "was never attempted, so there is no failed attempt to mark rolled back",
                          f"Remove {name} from resolve_rolled_back; a pending migration is applied without it.")
        if not any(r.unfinished for r in attempts):
            state = "is recorded as applied" if name in done else "has no failed attempt left (all rolled back)"
            raise _refuse("P3012", f"resolve_rolled_back names {name}, which {state}: only a failed attempt "
                          "(finished_at and rolled_back_at both empty) can be marked rolled back",
                          f"Remove {name} from resolve_rolled_back. To change what an applied migration did, "
                          "write a new migration.")


def plan_history(
    folder: MigrationsFolder,
    baseline: str,
    rows: Sequence,
    *,
    table_exists: bool,
    mark_applied: Iterable[str] = (),
    resolve_rolled_back: Iterable[str] = (),
) -> HistoryPlan:
    """Decide every write and apply from `rows` (`history.HistoryRow`s); raises `ErpPipelinesError` for a run
    config Prisma would refuse, and for a pending migration that does not parse, before anything is written."""
    position = folder.position(baseline)
    mark = [folder.get(name) for name in mark_applied]
    resolve = [folder.get(name).name for name in resolve_rolled_back]
    done = {r.name for r in rows if r.applied}
    first = baseline not in done
    covered = {m.name for m in folder.migrations[: position + 1]} if first else set()
    _check_resolutions(rows, mark, resolve, done, covered)

    writes: list[RowWrite] = []
    resolved: set[str] = set()
    for row in rows:
        if row.unfinished and row.name in covered:
            writes.append(RowWrite(RowAction.ROLL_BACK_COVERED, row.name, (row.id,)))
            resolved.add(row.id)
    for row in rows:
        if row.unfinished and row.name in resolve and row.id not in resolved:
            writes.append(RowWrite(RowAction.ROLL_BACK_NAMED, row.name, (row.id,)))
            resolved.add(row.id)
    writes += [RowWrite(RowAction.BASELINE, m.name) for m in folder.migrations[: position + 1]
               if m.name in covered and m.name not in done]
    marked = set()
    for migration in mark:
        if migration.name in covered or migration.name in marked:
            continue
        failed = tuple(r.id for r in rows if r.unfinished and r.name == migration.name and r.id not in resolved)
        resolved.update(failed)
        marked.add(migration.name)
        writes.append(RowWrite(RowAction.MARK_APPLIED, migration.name, failed))

    blocked = tuple(sorted({r.name for r in rows if r.unfinished and r.id not in resolved}))
    applies: list[PlannedApply] = []
    if not blocked:
        for index, migration in enumerate(folder.migrations):
            if migration.name in done or migration.name in covered or migration.name in marked:
                continue
            kind = migration.kind  # parses the script: a parse error stops here, before any write
            mode = (RunMode.REFUSED if kind is ScriptKind.UNRUNNABLE
                    else RunMode.ONE_TRANSACTION if kind.atomic_with_history else RunMode.AS_PRISMA)
            applies.append(PlannedApply(migration, mode, late=index <= position))
            if mode is RunMode.REFUSED:
                break
    return HistoryPlan(baseline, first, not table_exists, tuple(writes), tuple(applies), blocked)
