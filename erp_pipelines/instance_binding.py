"""The binding between a Dagster instance and the one ERP database it serves, checked before any write.

Why: a Dagster instance remembers which partitions it materialized, not where. One instance used for the demo
database and then for a real one said "5 days already done" for the real database's empty rollups. So the
first run of an instance records the identity of its ERP database, and every later run compares:

- the server: `system_identifier` from `pg_control_system()` (the same for every way of reaching one cluster,
  different for every initdb; a file-level copy or physical replica keeps it); when the role may not read
  it, the host and port the connection used;
- the database name and the ERP schema.

The record lives in the instance's own storage (Dagster's key-value table, key `BINDING_KEY`), so it travels
with the instance's run history whatever DAGSTER_HOME folder points at it. `ErpDatabase` checks it when a
run initializes the resource, i.e. before any asset's first statement; a mismatch is an ErpPipelinesError
naming both databases (never a password). `erp-pipelines bind` moves an instance to the database of
ERP_DATABASE_URL on purpose (the same database moved to another host).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import psycopg

from erp_pipelines.errors import ErpPipelinesError, display_url

BINDING_KEY = "erp_pipelines/erp_database"
SYSTEM_IDENTIFIER = "SELECT system_identifier::text FROM pg_control_system()"


@dataclass(frozen=True)
class DatabaseIdentity:
    """Which ERP database: server (system identifier, else host:port), database name, ERP schema."""

    system_identifier: str | None
    host: str
    port: int
    database: str
    schema: str
    url: str = ""  # the URL it was read through, password masked: for messages only, never compared

    def same_database(self, other: DatabaseIdentity) -> bool:
        if (self.database, self.schema) != (other.database, other.schema):
            return False
        if self.system_identifier and other.system_identifier:
            return self.system_identifier == other.system_identifier
        return (self.host, self.port) == (other.host, other.port)

    def describe(self) -> str:
        server = f"server {self.system_identifier}" if self.system_identifier else f"server {self.host}:{self.port}"
        return f"database {self.database!r}, schema {self.schema!r} on {server} ({self.url or 'URL not recorded'})"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DatabaseIdentity:
        return cls(**json.loads(text))


def read_identity(conn: psycopg.Connection, schema: str, url: str) -> DatabaseIdentity:
    """The identity of the database `conn` is connected to (reads only; `conn` in autocommit mode)."""
    sysid = None
    try:
        row = conn.execute(SYSTEM_IDENTIFIER).fetchone()
        sysid = row[0] if row else None
    except psycopg.errors.InsufficientPrivilege:
        pass  # pg_control_system() is for superusers and pg_monitor-like grants; host and port stand in
    database = conn.execute("SELECT current_database()").fetchone()[0]
    return DatabaseIdentity(sysid, conn.info.host or "", int(conn.info.port or 0), database, schema,
                            display_url(url))


def recorded(instance) -> DatabaseIdentity | None:
    """The instance's binding, or None before its first run against an ERP database."""
    value = instance.run_storage.get_cursor_values({BINDING_KEY}).get(BINDING_KEY)
    return DatabaseIdentity.from_json(value) if value else None


def record(instance, identity: DatabaseIdentity) -> None:
    instance.run_storage.set_cursor_values({BINDING_KEY: identity.to_json()})


def instance_name(instance) -> str:
    try:
        return f"the Dagster instance in {instance.root_directory}"
    except Exception:  # noqa: BLE001 - an instance without a folder still has a binding
        return "this Dagster instance"


def check_or_bind(instance, identity: DatabaseIdentity) -> None:
    """Record `identity` as the instance's database on its first run; afterwards refuse any other database."""
    bound = recorded(instance)
    if bound is None:
        record(instance, identity)
        return
    if bound.same_database(identity):
        return
    raise ErpPipelinesError(
        f"This run's ERP database is not the one this Dagster instance serves: the instance is bound to "
        f"{bound.describe()}, this run points at {identity.describe()}. Nothing was written; the instance's "
        "partitions and checks describe the other database, so they would hide this one's missing work.",
        where=f"{instance_name(instance)} (binding key {BINDING_KEY!r}) and ERP_DATABASE_URL / "
        "ERP_DATABASE_SCHEMA",
        fix="Give this database its own Dagster instance: a DAGSTER_HOME of its own and its own storage "
        "(DAGSTER_PG_URL or DAGSTER_PG_*). If it really is the same database reached another way (moved to "
        "another host), run `erp-pipelines bind` once with this ERP_DATABASE_URL and DAGSTER_HOME.",
    )
