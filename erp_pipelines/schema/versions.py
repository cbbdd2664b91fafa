"""Data versions and carried-forward metadata for the schema group, so a run that changes nothing looks like
one: downstream assets stay "Synced", and the last plan that was really applied stays on the overview.

Why: Dagster marks a downstream asset "Unsynced" when an upstream materialization has a new data version,
and without one every materialization gets a new version. So every no-op `make run` re-materialized
`erp_schema` and made every rollup partition look stale, and its metadata ("Nothing to do") hid the real
plan applied earlier. Here:

- `erp_schema`'s data version is a hash of the live schema's catalog fingerprint (prisma/catalog.py) after
  a sync that applied statements, and the previous version after one that applied nothing;
- `system_health_config`'s is a hash of the config row's values;
- `carried_plan` returns the last applied plan (and when) from the previous materialization when this
  one applied nothing, so the overview keeps showing it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import UTC, datetime

import dagster as dg

from erp_pipelines.prisma.catalog import fingerprint

LAST_APPLIED_PLAN = "last_applied_plan"
LAST_APPLIED_AT = "last_applied_at"
DATA_VERSION_TAG = "dagster/data_version"  # where Dagster records a materialization's data version


def _version(value: object) -> dg.DataVersion:
    return dg.DataVersion(hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:24])


def schema_version(context: dg.AssetExecutionContext, erp_db, applied: bool) -> dg.DataVersion:
    """erp_schema's version: after a sync that applied statements, a hash of the live schema's catalog
    fingerprint; after one that applied nothing, the previous materialization's version (the later
    migrations prisma_migration_history applies change the catalog too, but not what erp_schema did)."""
    if not applied:
        event = context.instance.get_latest_materialization_event(context.asset_key)
        tags = event.asset_materialization.tags if event and event.asset_materialization else None
        previous = (tags or {}).get(DATA_VERSION_TAG)
        if previous:
            return dg.DataVersion(previous)
    with erp_db.connect("schema-version", autocommit=True) as conn:
        return _version([erp_db.db_schema, *fingerprint(conn, erp_db.db_schema)])


def config_version(row) -> dg.DataVersion:
    """The config row's version: a hash of its values (None when the row is missing)."""
    return _version(asdict(row) if row is not None else None)


def carried_plan(context: dg.AssetExecutionContext, applied_plan_md: str | None) -> dict[str, dg.MetadataValue]:
    """`last_applied_plan` / `last_applied_at`: this run's plan if it applied one, else the previous
    materialization's (nothing when no plan was ever applied through this instance)."""
    if applied_plan_md is not None:
        return {LAST_APPLIED_PLAN: dg.MetadataValue.md(applied_plan_md),
                LAST_APPLIED_AT: dg.MetadataValue.text(datetime.now(UTC).isoformat(timespec="seconds"))}
    event = context.instance.get_latest_materialization_event(context.asset_key)
    if event is None or event.asset_materialization is None:
        return {}
    previous = event.asset_materialization.metadata
    if LAST_APPLIED_PLAN in previous:
        return {k: previous[k] for k in (LAST_APPLIED_PLAN, LAST_APPLIED_AT) if k in previous}
    statements = previous.get("statements")
    if statements is not None and statements.value and "plan" in previous:  # one recorded before this key
        at = datetime.fromtimestamp(event.timestamp, UTC).isoformat(timespec="seconds")
        return {LAST_APPLIED_PLAN: previous["plan"], LAST_APPLIED_AT: dg.MetadataValue.text(at)}
    return {}
