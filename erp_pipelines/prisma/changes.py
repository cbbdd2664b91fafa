"""The typed plan of a schema sync: steps (what to run, with their own data), drift (what is only reported).

A `Plan` is a plain value (Atlas style): printed as markdown or SQL, compared in tests, applied by a small
loop that reads each step's phase. Nothing here parses names back out of strings.

Phases, in the order they run:
- ENUM_VALUES: `ALTER TYPE ... ADD VALUE`, committed in its own short transaction first, because a new
  enum value cannot be used in the transaction that added it ("unsafe use of new value").
- DDL: everything else that adds objects, in one short transaction under Prisma's advisory lock.
- VALIDATE: `VALIDATE CONSTRAINT` of the foreign keys and CHECK constraints added NOT VALID, each in its own
  transaction after the DDL committed (it needs only SHARE UPDATE EXCLUSIVE, not Prisma's lock); a violating
  row leaves the constraint NOT VALID and is counted.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Phase(enum.IntEnum):
    ENUM_VALUES = 1
    DDL = 2
    VALIDATE = 3


class StepKind(enum.Enum):
    """Kinds of steps, declared in the order they run within a phase."""

    CREATE_SCHEMA = "create schema"
    CREATE_EXTENSION = "create extension"
    ADD_ENUM_VALUE = "add enum value"
    CREATE_ENUM = "create enum"
    CREATE_SEQUENCE = "create sequence"
    CREATE_TABLE = "create table"
    ADD_COLUMN = "add column"
    OWN_SEQUENCE = "own sequence"
    ADD_KEY = "add primary key / unique / exclusion constraint"
    CREATE_INDEX = "create index"
    CREATE_FUNCTION = "create function"
    CREATE_VIEW = "create view"
    ADD_CHECK = "add check constraint (NOT VALID)"
    ADD_FOREIGN_KEY = "add foreign key (NOT VALID)"
    CREATE_TRIGGER = "create trigger"
    VALIDATE_CONSTRAINT = "validate constraint"

    @property
    def phase(self) -> Phase:
        if self is StepKind.ADD_ENUM_VALUE:
            return Phase.ENUM_VALUES
        if self is StepKind.VALIDATE_CONSTRAINT:
            return Phase.VALIDATE
        return Phase.DDL

    @property
    def rank(self) -> int:
        return list(StepKind).index(self)


@dataclass(frozen=True)
class Step:
    """One statement of the plan with the object it concerns."""

    kind: StepKind
    sql: str
    object: str  # the object's own name (table, column, index, constraint, function key, extension...)
    table: str | None = None  # the table it belongs to, if any (for ADD_ENUM_VALUE: the enum type)
    constraint_kind: str | None = None  # for VALIDATE_CONSTRAINT: 'f' (foreign key) or 'c' (check)
    order: int = 0  # position among steps of the same kind (views, functions: creation order of the history)
    schema: str | None = None  # another schema the history creates, where the step runs (None: the target's)

    @property
    def phase(self) -> Phase:
        return self.kind.phase

    @property
    def label(self) -> str:
        return f"{self.table}.{self.object}" if self.table and self.table != self.object else self.object


@dataclass(frozen=True)
class Drift:
    """A difference we report and never change."""

    kind: str
    object: str
    wanted: str
    live: str
    fix: str = ""


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    equivalents: list[str] = field(default_factory=list)

    def ordered(self, phase: Phase | None = None) -> list[Step]:
        steps = sorted(self.steps, key=lambda s: (s.phase, s.kind.rank, s.order))
        return [s for s in steps if phase is None or s.phase == phase]

    def count(self, *kinds: StepKind) -> int:
        return sum(1 for s in self.steps if s.kind in kinds)

    def summary(self) -> dict[str, int]:
        return {
            "statements": len(self.steps),
            "tables_added": self.count(StepKind.CREATE_TABLE),
            "columns_added": self.count(StepKind.ADD_COLUMN),
            "indexes_added": self.count(StepKind.CREATE_INDEX),
            "constraints_added": self.count(StepKind.ADD_KEY, StepKind.ADD_CHECK, StepKind.ADD_FOREIGN_KEY),
            "sequences_added": self.count(StepKind.CREATE_SEQUENCE),
            "enum_changes": self.count(StepKind.CREATE_ENUM, StepKind.ADD_ENUM_VALUE),
            "extensions_added": self.count(StepKind.CREATE_EXTENSION),
            "schemas_added": self.count(StepKind.CREATE_SCHEMA),
            "views_functions_triggers_added": self.count(
                StepKind.CREATE_VIEW, StepKind.CREATE_FUNCTION, StepKind.CREATE_TRIGGER
            ),
            "drift_items": len(self.drift),
            "found_under_other_name": len(self.equivalents),
        }

    def sql_script(self) -> str:
        """The plan as one SQL script, a comment line before each phase."""
        lines: list[str] = []
        for phase in Phase:
            steps = self.ordered(phase)
            if steps:
                lines.append(f"-- phase {phase.value}: {_PHASE_TEXT[phase]}")
                lines += [(f"-- in schema {s.schema}\n" if s.schema else "") + s.sql.rstrip().rstrip(";") + ";"
                          for s in steps]
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = []
        if self.steps:
            lines += ["**Statements**", "", "```sql", self.sql_script(), "```", ""]
        else:
            lines += ["Nothing to do: the database already has everything the migrations create.", ""]
        if self.equivalents:
            lines += ["**Present under another name (not duplicated)**", ""]
            lines += [f"- {e}" for e in self.equivalents] + [""]
        if self.drift:
            lines += ["**Drift (reported, never changed)**", "", "| kind | object | wanted | live | fix |",
                      "|---|---|---|---|---|"]
            lines += [
                f"| {d.kind} | `{_cell(d.object)}` | `{_cell(d.wanted)}` | `{_cell(d.live)}` | {_cell(d.fix)} |"
                for d in self.drift
            ]
        return "\n".join(lines)


_PHASE_TEXT = {
    Phase.ENUM_VALUES: "new enum values, committed before anything uses them",
    Phase.DDL: "one transaction under Prisma's advisory lock",
    Phase.VALIDATE: "after commit, each in its own transaction (a violating row leaves it NOT VALID)",
}


def _cell(text: str) -> str:
    one_line = " ".join(text.split()).replace("|", "\\|")
    return one_line if len(one_line) <= 300 else one_line[:297] + "..."
