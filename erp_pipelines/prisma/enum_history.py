"""Enum types followed through a whole history by identity, for a replay in one transaction.

PostgreSQL before 17 refuses, in the transaction that added it, to use an enum value added by `ALTER TYPE ...
ADD VALUE` ("unsafe use of new value"), and a replay is one transaction. So the replay creates each enum type
the history creates with every label that type will ever carry, and skips its `ADD VALUE` / `RENAME VALUE`
statements. Identity, not name, is what is followed: Prisma removes a value by creating `"X_new"`, moving the
columns to it, renaming `"X"` to `"X_old"` and `"X_new"` to `"X"`, and dropping `"X_old"`; a value added
after that belongs to the type born as `"X_new"`. The labels the replayed catalog reports are the ones the
simulation ends with (added in place with BEFORE/AFTER, renamed values under their new name), which is what
running the migrations one by one leaves.
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


@dataclass
class _EnumType:
    labels: list[str]  # in order, as the history leaves them so far
    ever: list[str] = field(default_factory=list)  # every label it ever carried (renamed ones too)

    def add(self, value: str, neighbor: str | None, after: bool) -> None:
        if value in self.labels:
            return
        if neighbor and neighbor in self.labels:
            self.labels.insert(self.labels.index(neighbor) + (1 if after else 0), value)
        else:
            self.labels.append(value)
        if value not in self.ever:
            self.ever.append(value)

    def rename(self, old: str, new: str) -> None:
        if old in self.labels:
            self.labels[self.labels.index(old)] = new
        if new not in self.ever:
            self.ever.append(new)


@dataclass
class EnumHistory:
    """The enum types a list of statements creates, followed through renames and drops."""

    types: list[_EnumType] = field(default_factory=list)
    by_name: dict[str, int] = field(default_factory=dict)  # current name -> identity
    created_at: dict[tuple[int, int], int] = field(default_factory=dict)  # (migration, statement) -> identity it creates
    tracked: set[tuple[int, int]] = field(default_factory=set)  # (migration, statement) of ADD/RENAME VALUE on a tracked type

    def feed(self, key: tuple[int, int], text: str, node_type: str) -> None:
        """Follow one statement (`key` identifies it for `create_text` / `skips`)."""
        if node_type not in ("CreateEnumStmt", "AlterEnumStmt", "RenameStmt", "DropStmt"):
            return
        node = _parse(text)
        if isinstance(node, ast.CreateEnumStmt):
            labels = [v.sval for v in node.vals or ()]
            self.types.append(_EnumType(list(labels), list(labels)))
            self.by_name[_type_name(node.typeName)] = len(self.types) - 1
            self.created_at[key] = len(self.types) - 1
        elif isinstance(node, ast.AlterEnumStmt):
            ident = self.by_name.get(_type_name(node.typeName))
            if ident is None:
                return
            self.tracked.add(key)
            if node.oldVal:
                self.types[ident].rename(node.oldVal, node.newVal)
            elif node.newVal:
                self.types[ident].add(node.newVal, node.newValNeighbor, bool(node.newValIsAfter))
        elif isinstance(node, ast.RenameStmt) and node.renameType == enums.ObjectType.OBJECT_TYPE:
            old = _type_name(node.object if isinstance(node.object, tuple) else ())
            if old in self.by_name:
                self.by_name[node.newname] = self.by_name.pop(old)
        elif isinstance(node, ast.DropStmt) and node.removeType == enums.ObjectType.OBJECT_TYPE:
            for obj in node.objects or ():
                names = obj.names if isinstance(obj, ast.TypeName) else obj
                self.by_name.pop(_type_name(names if isinstance(names, tuple) else ()), None)

    def create_text(self, key: tuple[int, int], text: str) -> str | None:
        """The CREATE TYPE to run instead of statement `key` (every label the type will carry), or None."""
        ident = self.created_at.get(key)
        if ident is None:
            return None
        enum_type = self.types[ident]
        wanted = [*enum_type.labels, *(v for v in enum_type.ever if v not in enum_type.labels)]
        node = _parse(text)
        if [v.sval for v in node.vals or ()] == wanted:
            return None
        node.vals = tuple(ast.String(sval=v) for v in wanted)
        return RawStream()(node)

    def skips(self, key: tuple[int, int]) -> bool:
        """True for an ADD VALUE / RENAME VALUE of a type the history creates (its labels exist already)."""
        return key in self.tracked

    def final_labels(self) -> dict[str, list[str]]:
        """Type name -> labels, for the types that exist once the history ran."""
        return {name: list(self.types[ident].labels) for name, ident in self.by_name.items()}
