"""Enum types followed through a whole history by identity, for a replay in one transaction.

PostgreSQL before 17 refuses, in the transaction that added it, to use an enum value added by `ALTER TYPE ...
ADD VALUE` ("unsafe use of new value"), and a replay is one transaction. A value created by `CREATE TYPE` is
safe to use at once, and so is one renamed by `RENAME VALUE` (the rename updates the value's row in place). So
the replay creates each enum type the history creates with a slot for every value it will ever carry, in the
order the history leaves them: the values of the `CREATE TYPE` under their own names, the ones added later
under a placeholder label. An `ADD VALUE` of such a type becomes `RENAME VALUE '<placeholder>' TO '<value>'`,
and `RENAME VALUE` runs as written, so every statement sees the labels (and column defaults follow renames)
exactly as running the migrations one by one would leave them.

Identity, not name, is what is followed: Prisma removes a value by creating `"X_new"`, moving the columns to
it, renaming `"X"` to `"X_old"` and `"X_new"` to `"X"`, and dropping `"X_old"`; a value added after that
belongs to the type born as `"X_new"`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pglast
from pglast import ast, enums
from pglast.stream import RawStream


def _parse(text: str) -> ast.Node | None:
    try:
        tree = pglast.parse_sql(text)
    except pglast.parser.ParseError:
        return None
    return tree[0].stmt if len(tree) == 1 else None


def _type_name(names: Iterable) -> str:
    parts = [n.sval for n in names if isinstance(n, ast.String)]
    return parts[-1] if parts else ""


PLACEHOLDER = "erp_pipelines_pending_"


@dataclass
class _EnumType:
    ident: int
    labels: list[str]  # the labels of its CREATE TYPE
    created: int = 0  # how many slots the CREATE TYPE made
    slots: list[int] = field(default_factory=list)  # slot ids in order
    names: dict[int, str] = field(default_factory=dict)  # slot id -> its label so far

    def __post_init__(self) -> None:
        self.created = len(self.labels)
        self.slots = list(range(self.created))
        self.names = dict(enumerate(self.labels))

    def current(self) -> list[str]:
        return [self.names[s] for s in self.slots]

    def slot_of(self, label: str) -> int | None:
        return next((s for s in self.slots if self.names[s] == label), None)

    def placeholder(self, slot: int) -> str:
        return f"{PLACEHOLDER}{self.ident}_{slot}"

    def add(self, value: str, neighbor: str | None, after: bool) -> int | None:
        """The new slot holding `value`, or None when it exists already."""
        if self.slot_of(value) is not None:
            return None
        slot = len(self.names)
        near = self.slot_of(neighbor) if neighbor else None
        if near is not None:
            self.slots.insert(self.slots.index(near) + (1 if after else 0), slot)
        else:
            self.slots.append(slot)
        self.names[slot] = value
        return slot

    def rename(self, old: str, new: str) -> None:
        slot = self.slot_of(old)
        if slot is not None and self.slot_of(new) is None:
            self.names[slot] = new

    def created_labels(self) -> list[str]:
        """The labels the replay's CREATE TYPE gives: the created ones by their first name, placeholders."""
        return [self.labels[s] if s < self.created else self.placeholder(s) for s in self.slots]


@dataclass
class EnumHistory:
    """The enum types a list of statements creates, followed through renames and drops."""

    types: list[_EnumType] = field(default_factory=list)
    by_name: dict[str, int] = field(default_factory=dict)  # current name -> identity
    created_at: dict[tuple[int, int], int] = field(default_factory=dict)  # (migration, statement) -> identity it creates
    added: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)  # ADD VALUE -> (identity, slot)
    existing: set[tuple[int, int]] = field(default_factory=set)  # ADD VALUE IF NOT EXISTS of a present value

    def feed(self, key: tuple[int, int], text: str, node_type: str) -> None:
        """Follow one statement (`key` identifies it for `create_text` / `add_text` / `skips`)."""
        if node_type not in ("CreateEnumStmt", "AlterEnumStmt", "RenameStmt", "DropStmt"):
            return
        node = _parse(text)
        if isinstance(node, ast.CreateEnumStmt):
            labels = [v.sval for v in node.vals or ()]
            enum_type = _EnumType(len(self.types), list(labels))
            self.types.append(enum_type)
            self.by_name[_type_name(node.typeName)] = enum_type.ident
            self.created_at[key] = enum_type.ident
        elif isinstance(node, ast.AlterEnumStmt):
            ident = self.by_name.get(_type_name(node.typeName))
            if ident is None:
                return
            if node.oldVal:
                self.types[ident].rename(node.oldVal, node.newVal)
            elif node.newVal:
                slot = self.types[ident].add(node.newVal, node.newValNeighbor, bool(node.newValIsAfter))
                if slot is not None:
                    self.added[key] = (ident, slot)
                elif node.skipIfNewValExists:
                    self.existing.add(key)
        elif isinstance(node, ast.RenameStmt) and node.renameType == enums.ObjectType.OBJECT_TYPE:
            old = _type_name(node.object if isinstance(node.object, tuple) else ())
            if old in self.by_name:
                self.by_name[node.newname] = self.by_name.pop(old)
        elif isinstance(node, ast.DropStmt) and node.removeType == enums.ObjectType.OBJECT_TYPE:
            for obj in node.objects or ():
                names = obj.names if isinstance(obj, ast.TypeName) else obj
                self.by_name.pop(_type_name(names if isinstance(names, tuple) else ()), None)

    def create_text(self, key: tuple[int, int], text: str) -> str | None:
        """The CREATE TYPE to run instead of statement `key` (a slot for every value to come), or None."""
        ident = self.created_at.get(key)
        if ident is None:
            return None
        wanted = self.types[ident].created_labels()
        node = _parse(text)
        if [v.sval for v in node.vals or ()] == wanted:
            return None
        node.vals = tuple(ast.String(sval=v) for v in wanted)
        return RawStream()(node)

    def add_text(self, key: tuple[int, int], text: str) -> str | None:
        """The RENAME VALUE of the placeholder to run instead of ADD VALUE statement `key`, or None."""
        if key not in self.added:
            return None
        ident, slot = self.added[key]
        node = _parse(text)
        node.oldVal, node.newValNeighbor = self.types[ident].placeholder(slot), None
        node.newValIsAfter, node.skipIfNewValExists = True, False
        return RawStream()(node)

    def skips(self, key: tuple[int, int]) -> bool:
        """True for an `ADD VALUE IF NOT EXISTS` of a value the type has already (a no-op)."""
        return key in self.existing

    def final_labels(self) -> dict[str, list[str]]:
        """Type name -> labels, for the types that exist once the history ran."""
        return {name: self.types[ident].current() for name, ident in self.by_name.items()}
