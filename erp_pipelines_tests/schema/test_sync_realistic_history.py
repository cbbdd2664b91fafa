"""A 150+ migration unsquashed history, synced from `replay_from` = the first migration: an empty and a
hand-drifted database both end structurally equal to the same folder applied script by script, as Prisma
applies it; a second run plans nothing; the history is then baselined and Prisma says it is up to date."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import psycopg

from erp_pipelines.prisma.migrations import read_migrations_folder
from erp_pipelines.resources import ErpDatabase, PrismaMigrationsFolder
from erp_pipelines.schema.assets import erp_schema, prisma_migration_history
from erp_pipelines_tests.support.catalog_diff import read_catalog, sibling_database, structural_differences
from erp_pipelines_tests.support.prisma_cli import assert_prisma_up_to_date
from erp_pipelines_tests.support.realistic_history import write_realistic_history


def apply_like_prisma(url: str, folder: Path) -> None:
    """Each migration.sql as one simple-query script, in Prisma's order (implicit transaction per script)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for migration in read_migrations_folder(folder).migrations:
            conn.execute(migration.sql)


def sync(url: str, folder: Path, **config) -> dg.ExecuteInProcessResult:
    names = read_migrations_folder(folder).names()
    run_config = {"baseline_migration": names[-1], "replay_from": names[0], **config}
    return dg.materialize(
        [erp_schema],
        resources={"erp_db": ErpDatabase(url=url), "migrations": PrismaMigrationsFolder(path=str(folder))},
        run_config={"ops": {"erp_schema": {"config": run_config}}},
    )


def record_history(url: str, folder: Path) -> dg.ExecuteInProcessResult:
    names = read_migrations_folder(folder).names()
    return dg.materialize(
        [erp_schema, prisma_migration_history],
        resources={"erp_db": ErpDatabase(url=url), "migrations": PrismaMigrationsFolder(path=str(folder))},
        run_config={"ops": {
            "erp_schema": {"config": {"baseline_migration": names[-1], "replay_from": names[0]}},
            "prisma_migration_history": {"config": {"baseline_migration": names[-1], "replay_from": names[0]}},
        }},
    )


def planned_statements(url: str, folder: Path) -> int:
    observation = sync(url, folder, dry_run=True).get_asset_observation_events()[0]
    return observation.event_specific_data.asset_observation.metadata["statements"].value


def test_history_fixture_is_long_and_has_every_kind_of_script(tmp_path, pg_major):
    history = write_realistic_history(tmp_path, contrib=pg_major != "18")
    folder = read_migrations_folder(history)
    assert len(folder.migrations) >= 150
    text = "\n".join(m.sql for m in folder.migrations)
    for needle in ("BEGIN;", "CONCURRENTLY", '"public".', "CREATE VIEW", "CREATE TRIGGER", "ADD VALUE"):
        assert needle in text
    assert any(" " in m.name for m in folder.migrations) and any("_0" in m.name[8:10] for m in folder.migrations)


def test_empty_database_synced_from_the_first_migration_equals_the_history_applied_by_prisma(
    tmp_path, pg_major, erp_url
):
    history = write_realistic_history(tmp_path, contrib=pg_major != "18")
    reference_url = sibling_database(erp_url)
    apply_like_prisma(reference_url, history)
    sync(erp_url, history)
    assert structural_differences(read_catalog(reference_url), read_catalog(erp_url)) == []
    assert planned_statements(erp_url, history) == 0
    record_history(erp_url, history)
    assert_prisma_up_to_date(erp_url, history)


def test_hand_drifted_database_with_data_ends_equal_to_the_history_and_keeps_its_rows(
    tmp_path, pg_major, erp_url
):
    history = write_realistic_history(tmp_path, contrib=pg_major != "18")
    reference_url = sibling_database(erp_url)
    apply_like_prisma(reference_url, history)
    apply_like_prisma(erp_url, history)
    with psycopg.connect(erp_url, autocommit=True) as conn:
        conn.execute("""INSERT INTO "Organization" (id, name, slug, "updatedAt") VALUES ('o1', 'Acme', 'acme', now())""")
        conn.execute("""INSERT INTO "User" (id, email, "organizationId", "displayName") VALUES ('u1', 'a@x', 'o1', 'A')""")
        conn.execute('DROP VIEW "BusyOrganization"')
        conn.execute('DROP TABLE "TimeEntry", "Shift" CASCADE')
        conn.execute('ALTER TABLE "Ticket" DROP COLUMN "note"')
        conn.execute('ALTER TABLE "Ticket" ADD COLUMN "hand_added" TEXT')
        conn.execute('ALTER INDEX "Customer_organizationId_idx" RENAME TO "customer_org_hand_idx"')
        conn.execute('DROP TRIGGER "Customer_touch_updated_at" ON "Customer"')
        conn.execute('ALTER TABLE "Invoice" DROP CONSTRAINT "Invoice_amountCents_check"')
        conn.execute('INSERT INTO "Invoice" ("organizationId", title, "updatedAt") VALUES (%s, %s, now())', ("o1", "first"))
    sync(erp_url, history)
    assert sorted(structural_differences(read_catalog(reference_url), read_catalog(erp_url))) == [
        "extra column Ticket.hand_added",
        "extra index customer_org_hand_idx",
        "missing index Customer_organizationId_idx",
    ]
    with psycopg.connect(erp_url) as conn:
        assert conn.execute('SELECT count(*) FROM "User"').fetchone()[0] == 1
        assert conn.execute('SELECT count(*) FROM "Invoice"').fetchone()[0] == 1
    assert planned_statements(erp_url, history) == 0
    record_history(erp_url, history)
    assert_prisma_up_to_date(erp_url, history)

