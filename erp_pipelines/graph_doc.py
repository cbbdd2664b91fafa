"""The asset graph of `erp_pipelines.definitions.defs` as documentation: a Mermaid diagram and tables.

    python -m erp_pipelines.graph_doc            print the page
    python -m erp_pipelines.graph_doc --write    rewrite docs/asset_graph.md (and README.md's asset table)
    python -m erp_pipelines.graph_doc --check    exit 1 if either file is stale

Reading the graph needs no database: resources are not initialised and `ERP_DATABASE_URL` is only read
at run time (main sets a dummy value anyway). `erp_pipelines_tests/test_docs.py` regenerates the page in
memory and compares, so the docs cannot drift from the code.

Three steps with plain data between them: `collect` reads `defs` (resolved asset graph, `AssetsDefinition`
specs and check specs, jobs, schedules, sensors) into a `GraphDoc`; `mermaid` and the `*_table`
functions render it; `main` writes docs/asset_graph.md and README.md's marked section.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from erp_pipelines import settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DOC_PATH = PROJECT_ROOT / "docs" / "asset_graph.md"
README_PATH = PROJECT_ROOT / "README.md"
README_START = "<!-- asset-table -->"
README_END = "<!-- /asset-table -->"
WRITE_COMMAND = "python -m erp_pipelines.graph_doc --write"
AUTOMATION_GROUP = "jobs, schedules, sensors"


@dataclass(frozen=True)
class AssetRow:
    name: str
    group: str
    kind: str
    guarantee: str
    deps: tuple[str, ...]
    external: bool


@dataclass(frozen=True)
class CheckRow:
    name: str  # "asset:check", Dagster's own notation (AssetCheckKey.to_user_string)
    check: str
    asset: str
    group: str
    kind: str
    guarantee: str
    additional_deps: tuple[str, ...]


@dataclass(frozen=True)
class JobRow:
    name: str
    assets: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class ScheduleRow:
    name: str
    cron: str
    timezone: str
    job: str
    description: str


@dataclass(frozen=True)
class SensorRow:
    name: str
    kind: str
    jobs: tuple[str, ...]
    assets: tuple[str, ...]  # targeted (asset selection) or monitored (asset sensor)
    description: str


@dataclass
class GraphDoc:
    assets: list[AssetRow] = field(default_factory=list)  # topological order
    checks: list[CheckRow] = field(default_factory=list)  # in the order of their assets
    jobs: list[JobRow] = field(default_factory=list)
    schedules: list[ScheduleRow] = field(default_factory=list)
    sensors: list[SensorRow] = field(default_factory=list)

    def groups(self) -> list[str]:
        """Asset groups in the order their first asset appears topologically."""
        return list(dict.fromkeys(a.group for a in self.assets))


# -- collect ----------------------------------------------------------------------------------------------


def summary(description: str | None, longest: int = 300) -> str:
    """The first paragraph of a description, on one line (its first sentence if the paragraph is long)."""
    if not description:
        return ""
    first = " ".join(re.split(r"\n\s*\n", description.strip(), maxsplit=1)[0].split())
    if len(first) > longest:
        first = re.split(r"(?<=\.)\s", first, maxsplit=1)[0]
    return first


def _kind(partitions_def: dg.PartitionsDefinition | None, kinds: Iterable[str]) -> list[str]:
    parts = []
    if isinstance(partitions_def, dg.DailyPartitionsDefinition):
        parts.append(f"daily partitions ({partitions_def.timezone})")
    elif partitions_def is not None:
        parts.append(f"partitioned ({type(partitions_def).__name__})")
    return parts + sorted(kinds)


def _toposort(deps: dict[str, set[str]], names: Iterable[str]) -> list[str]:
    """`names`, each after those of its dependencies among them; ties broken by name (stable output)."""
    remaining = {name: deps[name] & set(names) for name in names}
    ordered: list[str] = []
    while remaining:
        ready = [name for name, d in remaining.items() if not d] or list(remaining)  # no cycles in Dagster
        name = min(ready)
        ordered.append(name)
        del remaining[name]
        for d in remaining.values():
            d.discard(name)
    return ordered


def _depth(deps: dict[str, set[str]]) -> dict[str, int]:
    """Length of the longest dependency chain above each asset (0 for a source)."""
    depth: dict[str, int] = {}

    def visit(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name not in depth:
            above = [visit(d, seen | {name}) + 1 for d in deps.get(name, ()) if d in deps and d not in seen]
            depth[name] = max(above, default=0)
        return depth[name]

    for name in deps:
        visit(name)
    return depth


def _ordered_assets(deps: dict[str, set[str]], group_of: dict[str, str], external: set[str]) -> list[str]:
    """Groups in pipeline order (by the depth of their first computed asset), topological inside a group."""
    depth = _depth(deps)
    groups: dict[str, list[str]] = {}
    for name in sorted(deps):
        groups.setdefault(group_of[name], []).append(name)

    def group_rank(group: str) -> tuple[int, str]:
        members = [n for n in groups[group] if n not in external] or groups[group]
        return min(depth[n] for n in members), group

    return [name for group in sorted(groups, key=group_rank) for name in _toposort(deps, groups[group])]


def _check_guarantee(check: dg.AssetCheckSpec) -> str:
    """The check's description; for Dagster's freshness checks, the deadline they enforce."""
    params = check.metadata.get("dagster/freshness_params")
    params = getattr(params, "data", params)
    if isinstance(params, dict) and (params.get("deadline_cron") or params.get("lower_bound_delta_seconds")):
        tz = params.get("timezone", "UTC")
        if params.get("lower_bound_delta_seconds"):
            text = f"Materialized within the last {params['lower_bound_delta_seconds']:g} s"
            if params.get("deadline_cron"):
                text += f" as of each `{params['deadline_cron']}` ({tz}) tick"
            return text + " (Dagster freshness check)."
        return (
            f"The newest complete partition is materialized by each `{params['deadline_cron']}` ({tz}) tick "
            "(Dagster freshness check; fails even when no run happens)."
        )
    return summary(check.description)


def collect(defs: dg.Definitions) -> GraphDoc:
    """Read assets, checks, jobs, schedules and sensors of `defs` into plain rows."""
    graph = defs.resolve_asset_graph()
    specs: dict[str, dg.AssetSpec] = {}
    external: set[str] = set()  # AssetSpecs: tables someone else writes
    check_specs: list[dg.AssetCheckSpec] = []
    for assets_def in graph.assets_defs:
        for spec in assets_def.specs:
            specs[spec.key.to_user_string()] = spec
            if not assets_def.is_executable:
                external.add(spec.key.to_user_string())
        check_specs.extend(assets_def.check_specs)

    deps = {name: {d.asset_key.to_user_string() for d in spec.deps} for name, spec in specs.items()}
    group_of = {name: spec.group_name or "default" for name, spec in specs.items()}
    doc = GraphDoc()
    for name in _ordered_assets(deps, group_of, external):
        spec = specs[name]
        kind = ["external table" if name in external else "asset", *_kind(spec.partitions_def, spec.kinds)]
        doc.assets.append(
            AssetRow(
                name=name,
                group=group_of[name],
                kind=", ".join(kind),
                guarantee=summary(spec.description),
                deps=tuple(sorted(deps[name])),
                external=name in external,
            )
        )

    position = {a.name: i for i, a in enumerate(doc.assets)}
    groups = {a.name: a.group for a in doc.assets}
    for check in sorted(check_specs, key=lambda c: (position[c.asset_key.to_user_string()], c.name)):
        asset = check.asset_key.to_user_string()
        doc.checks.append(
            CheckRow(
                name=check.key.to_user_string(),
                check=check.name,
                asset=asset,
                group=groups[asset],
                kind="check, blocking" if check.blocking else "check",
                guarantee=_check_guarantee(check),
                additional_deps=tuple(sorted(d.asset_key.to_user_string() for d in check.additional_deps)),
            )
        )

    for job in sorted(defs.jobs or [], key=lambda j: j.name):
        selection = getattr(job, "selection", None)
        assets = (
            tuple(sorted((k.to_user_string() for k in selection.resolve(graph)), key=position.__getitem__))
            if isinstance(selection, dg.AssetSelection)
            else ()
        )
        doc.jobs.append(JobRow(job.name, assets, summary(job.description)))

    for unresolved in sorted(defs.schedules or [], key=lambda s: s.name):
        schedule = defs.resolve_schedule_def(unresolved.name)
        crons = schedule.cron_schedule if isinstance(schedule.cron_schedule, list) else [schedule.cron_schedule]
        doc.schedules.append(
            ScheduleRow(
                name=schedule.name,
                cron="; ".join(crons),
                timezone=schedule.execution_timezone or "UTC",
                job=schedule.job_name,
                description=summary(schedule.description),
            )
        )

    for unresolved in sorted(defs.sensors or [], key=lambda s: s.name):
        sensor = defs.resolve_sensor_def(unresolved.name)
        jobs = tuple(sorted({t.job_name for t in sensor.targets if t.job_name and not t.job_name.startswith("__")}))
        assets: set[str] = set()
        if sensor.asset_selection is not None:
            assets |= {k.to_user_string() for k in sensor.asset_selection.resolve(graph, allow_missing=True)}
        if isinstance(sensor, dg.AssetSensorDefinition):
            assets.add(sensor.asset_key.to_user_string())
        doc.sensors.append(
            SensorRow(
                name=sensor.name,
                kind=sensor.sensor_type.value.lower().replace("_", " "),
                jobs=jobs,
                assets=tuple(sorted(assets, key=lambda k: position.get(k, len(position)))),
                description=summary(sensor.description),
            )
        )
    return doc


# -- render -----------------------------------------------------------------------------------------------


def _id(prefix: str, name: str) -> str:
    return prefix + re.sub(r"[^A-Za-z0-9]", "_", name)


def _label(text: str) -> str:
    return text.replace('"', "#quot;")


def mermaid(doc: GraphDoc) -> str:
    """A `flowchart LR`: one subgraph per asset group, checks beside their asset, automation at the end."""
    lines = ["flowchart LR"]
    for group in doc.groups():
        lines.append(f'  subgraph {_id("g_", group)}["{_label(group)}"]')
        for asset in (a for a in doc.assets if a.group == group):
            shape = '[("{}")]' if asset.external else '["{}"]'
            lines.append(f"    {_id('a_', asset.name)}{shape.format(_label(asset.name))}")
        for check in (c for c in doc.checks if c.group == group):
            lines.append(f'    {_id("c_", check.name)}{{{{"{_label(check.check)}"}}}}')
        lines.append("  end")
    if doc.jobs or doc.schedules or doc.sensors:
        lines.append(f'  subgraph {_id("g_", AUTOMATION_GROUP)}["{AUTOMATION_GROUP}"]')
        for job in doc.jobs:
            lines.append(f'    {_id("j_", job.name)}[["{_label(job.name)}"]]')
        for schedule in doc.schedules:
            lines.append(f'    {_id("s_", schedule.name)}(["{_label(schedule.name)}<br/>{_label(schedule.cron)} {schedule.timezone}"])')
        for sensor in doc.sensors:
            lines.append(f'    {_id("n_", sensor.name)}>"{_label(sensor.name)}"]')
        lines.append("  end")
    for asset in doc.assets:
        for dep in asset.deps:
            lines.append(f"  {_id('a_', dep)} --> {_id('a_', asset.name)}")
    for check in doc.checks:
        lines.append(f"  {_id('a_', check.asset)} -.- {_id('c_', check.name)}")
        for dep in check.additional_deps:
            lines.append(f"  {_id('a_', dep)} -.-> {_id('c_', check.name)}")
    for schedule in doc.schedules:
        lines.append(f"  {_id('s_', schedule.name)} --> {_id('j_', schedule.job)}")
    for sensor in doc.sensors:
        for job in sensor.jobs:
            lines.append(f"  {_id('n_', sensor.name)} --> {_id('j_', job)}")
        for asset in sensor.assets:
            lines.append(f"  {_id('n_', sensor.name)} -.-> {_id('a_', asset)}")
    for job in doc.jobs:
        for asset in job.assets:
            lines.append(f"  {_id('j_', job.name)} -.-> {_id('a_', asset)}")
    lines += [
        "  classDef external fill:#eef,stroke:#669",
        "  classDef check fill:#efe,stroke:#696",
    ]
    external = [_id("a_", a.name) for a in doc.assets if a.external]
    if external:
        lines.append(f"  class {','.join(external)} external")
    if doc.checks:
        lines.append(f"  class {','.join(_id('c_', c.name) for c in doc.checks)} check")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or "-"


def _table(header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _names(names: Iterable[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def asset_table(doc: GraphDoc) -> str:
    """Every asset, each followed by its checks: name, group, kind, what it guarantees."""
    rows = []
    for asset in doc.assets:
        rows.append((f"`{asset.name}`", asset.group, asset.kind, asset.guarantee))
        rows += [
            (f"`{c.name}`", c.group, c.kind, c.guarantee) for c in doc.checks if c.asset == asset.name
        ]
    return _table(("name", "group", "kind", "what it guarantees"), rows)


def automation_tables(doc: GraphDoc) -> str:
    parts = [
        "### Jobs",
        "",
        _table(("job", "assets", "what it does"), ((f"`{j.name}`", _names(j.assets), j.description) for j in doc.jobs)),
        "",
        "### Schedules",
        "",
        _table(
            ("schedule", "cron", "time zone", "job", "what it does"),
            ((f"`{s.name}`", f"`{s.cron}`", s.timezone, f"`{s.job}`", s.description) for s in doc.schedules),
        ),
        "",
        "### Sensors",
        "",
        _table(
            ("sensor", "type", "starts", "assets", "what it does"),
            ((f"`{s.name}`", s.kind, _names(s.jobs), _names(s.assets), s.description) for s in doc.sensors),
        ),
    ]
    return "\n".join(parts)


def render_page(doc: GraphDoc) -> str:
    """The whole of docs/asset_graph.md."""
    return "\n".join(
        [
            "# Asset graph",
            "",
            f"<!-- Generated from erp_pipelines.definitions.defs by `{WRITE_COMMAND}`; do not edit. -->",
            "",
            "Solid arrows: data dependencies (and schedule/sensor -> job). Dotted: an asset's checks, a check's",
            "extra inputs, and what a job or sensor materializes. Cylinders are tables the ERP writes; hexagons",
            "are asset checks.",
            "",
            "```mermaid",
            mermaid(doc),
            "```",
            "",
            "## Assets and checks",
            "",
            "A blocking check that fails stops the assets downstream of it in the same run.",
            "",
            asset_table(doc),
            "",
            "## Jobs, schedules and sensors",
            "",
            automation_tables(doc),
            "",
        ]
    )


def readme_with_table(readme: str, table: str) -> str | None:
    """README text with the section between the markers replaced by `table`; None if there are no markers."""
    lines = readme.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == README_START]
    ends = [i for i, line in enumerate(lines) if line.strip() == README_END]
    if not starts:
        return None
    start = starts[0]
    end = next((i for i in ends if i > start), None)
    if end is None:
        raise SystemExit(f"README.md has {README_START} but no {README_END} after it; add the end marker.")
    return "".join(lines[: start + 1]) + table + "\n" + "".join(lines[end:])


# -- write ------------------------------------------------------------------------------------------------


def load_defs() -> dg.Definitions:
    from erp_pipelines.definitions import defs

    return defs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m erp_pipelines.graph_doc", description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite docs/asset_graph.md and README.md's table")
    mode.add_argument("--check", action="store_true", help="exit 1 if docs/asset_graph.md or README.md is stale")
    args = parser.parse_args(argv)

    # Resources read ERP_DATABASE_URL through dg.EnvVar at run time only; reading the graph never connects,
    # but a value keeps any import-time lookup from failing on a machine without one.
    os.environ.setdefault(settings.ERP_DATABASE_URL, "postgresql://graph-doc@localhost/unused")
    doc = collect(load_defs())
    page = render_page(doc)
    readme = README_PATH.read_text() if README_PATH.exists() else None
    new_readme = readme_with_table(readme, asset_table(doc)) if readme is not None else None
    if not (args.write or args.check):
        sys.stdout.write(page)
        return 0
    stale = []
    if not DOC_PATH.exists() or DOC_PATH.read_text() != page:
        stale.append(DOC_PATH)
    if new_readme is not None and new_readme != readme:
        stale.append(README_PATH)
    if args.check:
        for path in stale:
            print(f"{path.relative_to(PROJECT_ROOT)} is stale: run `{WRITE_COMMAND}`.", file=sys.stderr)
        return 1 if stale else 0
    DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
    if DOC_PATH in stale:
        DOC_PATH.write_text(page)
    if README_PATH in stale and new_readme is not None:
        README_PATH.write_text(new_readme)
    for path in stale:
        print(f"wrote {path.relative_to(PROJECT_ROOT)}")
    if not stale:
        print("docs/asset_graph.md is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
