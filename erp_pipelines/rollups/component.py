"""`DailyRollup`: the Dagster Component every rollup is an instance of, and the loader of its instances.

Why a Component: a rollup is data (a raw table, its time column and id, the aggregate's key columns, the
measures), so it is declared in one YAML file, `erp_pipelines/defs/rollups/<name>/defs.yaml`, loaded by
Dagster's own defs-folder machinery (`dg.load_from_defs_folder` / `dg.ComponentTree`). Everything else
derives from the instance's `RollupSpec` (rollups/spec.py) through the registry: the asset and its
checks, the fingerprint and ledger, capture triggers, sensors, retention, grants, docs and the summary.

Every instance's asset is built by one machine (rollups/machine.py) from its spec. An instance either
declares its measures (rollups/declared.py makes its spec and generated SQL; its aggregate table is created
in our own schema) or, for the two original rollups, names the module holding their tuned statements
(`implementation:`); the loader then checks that the declaration's tables and columns are the module's.
A day statement the measures cannot say goes in a .sql file next to defs.yaml (`day_statement:`).
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Literal

import dagster as dg
from pydantic import Field, PrivateAttr

from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.rollups import declared, declared_sql, machine
from erp_pipelines.rollups.spec import RollupSpec

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # erp_pipelines/
DEFS_MODULE = "erp_pipelines.defs"
DEFS_DIR = PACKAGE_DIR / "defs"
# Another defs folder (a copy with more instances) instead of the package's own: the toy-rollup test runs the
# whole graph on one this way; a team can point it at its own folder of instances.
DEFS_DIR_ENV = "ERP_PIPELINES_DEFS_DIR"


class Measure(dg.Model):
    """One column of the aggregate, computed per day and key from the raw rows."""

    name: str = Field(description="The aggregate column.")
    kind: Literal["count", "count_if", "sum", "weighted_mean", "distinct_count"]
    column: str | None = Field(default=None, description="The raw column measured (all kinds but count).")
    weight: str | None = Field(default=None, description="weighted_mean: the weight column (unset: 1 per row).")
    values: list[str] = Field(
        default_factory=list, description="count_if: the column's values counted (case-insensitive)."
    )


class DailyRollup(dg.Component, dg.Model, dg.Resolvable):
    """A daily UTC rollup of one raw table of the ERP into one aggregate table."""

    aggregate_table: str
    description: str
    raw_table: str
    raw_description: str = ""
    time_column: str
    time_type: Literal["timestamp", "timestamptz"] = "timestamp"
    id_column: str = "id"
    keys: list[str] = Field(default_factory=list)
    day_column: str = "day"
    measures: list[Measure] = Field(default_factory=list)
    # where retention takes the raw table's retention days from: the health config's
    # "metricsRetentionDays", the run config's "usage_event_retention_days", or unset (raw rows kept)
    raw_retention: Literal["metricsRetentionDays", "usage_event_retention_days"] | None = None
    order: int = 100  # the order rollups run in (and are listed)
    implementation: str | None = Field(
        default=None, description="A module with tuned statements (`ROLLUP` spec and `ASSET`) instead of the "
        "generated ones: the two original rollups."
    )
    day_statement: str | None = Field(
        default=None, description="A .sql file next to defs.yaml replacing the generated day statement (the "
        "escape hatch): same parameters and result columns as rollups/declared_sql.py replace_day; "
        "{aggregate} and {raw_row_hash} are put in."
    )
    _folder: Path | None = PrivateAttr(default=None)

    @classmethod
    def load(cls, attributes: object, context: dg.ComponentLoadContext) -> DailyRollup:
        component = super().load(attributes, context)  # type: ignore[arg-type]
        component._folder = Path(context.path)
        return component

    def _day_statement_text(self) -> str | None:
        if self.day_statement is None:
            return None
        path = (self._folder or DEFS_DIR) / self.day_statement
        if not path.is_file():
            raise ErpPipelinesError(
                f"The day statement {path} does not exist.",
                where=self._where(),
                fix="Put the .sql file next to the instance's defs.yaml, or remove `day_statement`.",
            )
        return path.read_text()

    def declaration(self) -> declared_sql.RollupDecl:
        return declared_sql.RollupDecl(
            aggregate_table=self.aggregate_table,
            day_column=self.day_column,
            raw_table=self.raw_table,
            ts_column=self.time_column,
            id_column=self.id_column,
            keys=tuple(self.keys),
            measures=tuple(
                declared_sql.MeasureDecl(m.name, m.kind, m.column, m.weight, tuple(m.values)) for m in self.measures
            ),
        )

    @cached_property
    def _implementation(self) -> ModuleType | None:
        return importlib.import_module(self.implementation) if self.implementation else None

    @cached_property
    def spec(self) -> RollupSpec:
        module = self._implementation
        if module is not None:
            spec: RollupSpec = module.ROLLUP
            self._check_matches(spec)
            return spec
        self._validate()
        return declared.build_spec(
            self.declaration(), description=self.description, raw_description=self.raw_description,
            ts_type=self.time_type, raw_retention=self.raw_retention, day_statement=self._day_statement_text(),
        )

    @cached_property
    def asset(self) -> dg.AssetsDefinition:
        module = self._implementation
        # one builder for every instance (rollups/machine.py); an implementation module built its own with it
        return module.ASSET if module is not None else machine.build_asset(self.spec)

    def _where(self) -> str:
        return f"rollup instance {self.aggregate_table} (erp_pipelines/defs/rollups/.../defs.yaml)"

    def _validate(self) -> None:
        problems = []
        if not self.measures:
            problems.append("it declares no measures")
        for m in self.measures:
            if m.kind != "count" and not m.column:
                problems.append(f"measure {m.name} ({m.kind}) names no column")
            if m.kind == "count_if" and not m.values:
                problems.append(f"measure {m.name} (count_if) lists no values")
        names = [self.day_column, *self.keys, *(m.name for m in self.measures), "updated_at"]
        if len(set(names)) != len(names):
            problems.append(f"column names repeat: {names}")
        if problems:
            raise ErpPipelinesError(
                "The rollup declaration is incomplete: " + "; ".join(problems) + ".",
                where=self._where(),
                fix="Declare at least one measure; name the raw column of every measure but `count`, and the "
                "values of every `count_if` (docs/rollups.md).",
            )

    def _check_matches(self, spec: RollupSpec) -> None:
        declared_ = (self.aggregate_table, self.raw_table, self.time_column, self.id_column,
                     (self.day_column, *self.keys), self.raw_retention, self.time_type)
        actual = (spec.aggregate_table, spec.raw_table, spec.ts_column, spec.id_column, spec.aggregate_key,
                  spec.raw_retention, spec.ts_type)
        if declared_ != actual:
            raise ErpPipelinesError(
                f"The declaration {declared_} differs from its implementation's {actual}.",
                where=self._where(),
                fix=f"Make the YAML name the tables and columns of {self.implementation}.",
            )

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return dg.Definitions(assets=[self.spec.raw_spec, self.asset])


def defs_module_at(folder: Path) -> ModuleType:
    """A defs folder outside the package, imported as a module of its own name (it has an __init__.py)."""
    folder = folder.resolve()
    if not (folder / "__init__.py").is_file():
        raise ErpPipelinesError(
            f"{folder} is not a defs folder (no __init__.py).",
            where=f"{DEFS_DIR_ENV}={folder}",
            fix="Copy erp_pipelines/defs (with its __init__.py) and add rollups/<name>/defs.yaml to the copy.",
        )
    if str(folder.parent) not in sys.path:
        sys.path.insert(0, str(folder.parent))
    return importlib.import_module(folder.name)


def component_tree(defs_module: ModuleType | None = None) -> dg.ComponentTree:
    """The component tree of a defs folder: the given module, else ERP_PIPELINES_DEFS_DIR's folder, else the
    package's own erp_pipelines/defs."""
    folder = os.environ.get(DEFS_DIR_ENV)
    module = defs_module or (defs_module_at(Path(folder)) if folder else importlib.import_module(DEFS_MODULE))
    return dg.ComponentTree.from_module(defs_module=module, project_root=PACKAGE_DIR.parent)


def build_tree_defs(tree: dg.ComponentTree) -> dg.Definitions:
    """The tree's Definitions (what `dg.load_from_defs_folder` returns for the package's own tree), without
    Dagster's beta warnings about the code references it attaches."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return tree.build_defs()


def load_rollups(tree: dg.ComponentTree) -> Sequence[DailyRollup]:
    """Every rollup instance of the tree, in their `order` (then by name); aggregate tables unique."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        found = tree.get_all_components(DailyRollup)
    rollups = sorted(found, key=lambda r: (r.order, r.aggregate_table))
    seen: set[str] = set()
    for rollup in rollups:
        if rollup.aggregate_table in seen:
            raise ErpPipelinesError(
                f"Two rollup instances write {rollup.aggregate_table}.",
                where=f"the defs folder {tree.defs_module_path}",
                fix="Give every instance its own aggregate_table.",
            )
        seen.add(rollup.aggregate_table)
    return rollups
