"""Real Dagster runs of the schema sync with a replay range, as an operator configures `schema_sync_job`.

Why: the generated-history tests and the history bench run the same pair (`erp_schema` then
`prisma_migration_history`) with the same `replay_from` / `baseline_migration` on both assets; one place says how.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from erp_pipelines.resources import ErpDatabase, PrismaMigrationsFolder
from erp_pipelines.schema.assets import erp_schema, prisma_migration_history


def range_config(baseline: str, replay_from: str, **extra) -> dict:
    return {"baseline_migration": baseline, "replay_from": replay_from, **extra}


def sync_and_record(url: str, folder: Path, baseline: str, replay_from: str) -> dg.ExecuteInProcessResult:
    """`erp_schema` then `prisma_migration_history`, both given the range; never raises on a failed step or
    check (the caller reads the result)."""
    config = range_config(baseline, replay_from)
    return dg.materialize(
        [erp_schema, prisma_migration_history],
        resources={"erp_db": ErpDatabase(url=url), "migrations": PrismaMigrationsFolder(path=str(folder))},
        run_config={"ops": {"erp_schema": {"config": config}, "prisma_migration_history": {"config": config}}},
        raise_on_error=False,
    )


def planned_statements(url: str, folder: Path, baseline: str, replay_from: str) -> int:
    """How many statements a dry run of `erp_schema` plans (0: nothing to do)."""
    result = dg.materialize(
        [erp_schema],
        resources={"erp_db": ErpDatabase(url=url), "migrations": PrismaMigrationsFolder(path=str(folder))},
        run_config={"ops": {"erp_schema": {"config": range_config(baseline, replay_from, dry_run=True)}}},
    )
    observation = result.get_asset_observation_events()[0]
    return observation.event_specific_data.asset_observation.metadata["statements"].value


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """The failed steps' errors and failed checks of a run, for an assertion message."""
    lines = [f"step {e.step_key}: {e.event_specific_data.error.message.strip()}"
             for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    lines += [f"check {c.check_name} failed: {c.metadata}" for c in result.get_asset_check_evaluations() if not c.passed]
    return "\n".join(lines)
