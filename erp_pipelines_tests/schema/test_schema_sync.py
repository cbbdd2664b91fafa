"""The schema group against a real PostgreSQL and real Dagster: the seed's repair, made safe and repeatable."""

import threading
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from erp_pipelines.demo.state import load_drifted_state
from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.prisma.catalog import inspect
from erp_pipelines.prisma.migrations import read_migrations_folder
from erp_pipelines.prisma.sync import PRISMA_ADVISORY_LOCK, sync_schema
from erp_pipelines.resources import ErpDatabase, PrismaMigrationsFolder
from erp_pipelines.schema.assets import (
    DEFAULT_BASELINE,
    erp_schema,
    prisma_migration_history,
    system_health_config,
)

SCHEMA_ASSETS = [erp_schema, prisma_migration_history, system_health_config]


def run_schema(url: str, migrations: Path | None = None, run_config: dict | None = None, raise_on_error=True):
    resources = {"erp_db": ErpDatabase(url=url), "migrations": PrismaMigrationsFolder(**({"path": str(migrations)} if migrations else {}))}
    return dg.materialize(SCHEMA_ASSETS, resources=resources, run_config=run_config, raise_on_error=raise_on_error)


def snapshot(url: str) -> tuple:
    """Catalog and migration history, for 'nothing changed' assertions."""
    with psycopg.connect(url) as conn:
        cat = inspect(conn, "public")
        history = []
        if "_prisma_migrations" in cat.tables:
            history = conn.execute(
                "SELECT id, checksum, finished_at, migration_name, rolled_back_at FROM _prisma_migrations ORDER BY id"
            ).fetchall()
        conn.rollback()
    return (
        {t: dict(v.columns) for t, v in cat.tables.items()},
        dict(cat.indexes),
        dict(cat.constraints),
        dict(cat.sequences),
        dict(cat.enums),
        history,
    )


def check_results(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def baseline_table_count(conn) -> int:
    return conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]


def test_empty_database_gets_every_table_one_baseline_row_and_the_config_row(erp_url, conn):
    result = run_schema(erp_url)
    # 47 application tables + report_exports (post-baseline) + _prisma_migrations
    assert baseline_table_count(conn) == 49
    rows = conn.execute(
        "SELECT migration_name, finished_at IS NOT NULL, rolled_back_at IS NULL, checksum FROM _prisma_migrations "
        "ORDER BY migration_name"
    ).fetchall()
    folder = read_migrations_folder(PrismaMigrationsFolder().folder())
    assert [r[0] for r in rows] == folder.names()
    assert all(r[1] and r[2] for r in rows)
    assert {r[0]: r[3] for r in rows} == {m.name: m.checksum for m in folder.migrations}
    config = conn.execute('SELECT "metricsRetentionDays", "aggregateRetentionDays", "backupLocation" FROM system_health_config').fetchall()
    assert config == [(7, 365, "/backups/railway")]
    assert all(check_results(result).values()), check_results(result)


def test_sync_keeps_existing_users_and_adds_retention_columns(erp_url, conn):
    load_drifted_state(conn)
    users_before = conn.execute("SELECT * FROM users ORDER BY id").fetchall()
    config_before = conn.execute('SELECT thresholds, "backupLocation", "refreshInterval", updated_at FROM system_health_config').fetchall()
    result = run_schema(erp_url)

    assert conn.execute("SELECT * FROM users ORDER BY id").fetchall() == users_before
    assert len(users_before) == 20
    assert conn.execute(
        'SELECT thresholds, "backupLocation", "refreshInterval", updated_at, "metricsRetentionDays", '
        '"aggregateRetentionDays" FROM system_health_config'
    ).fetchall() == [(*config_before[0], 7, 365)]
    assert baseline_table_count(conn) == 49
    # The unique index on users(email) existed under another name: reported, not duplicated.
    email_indexes = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'users' AND indexdef LIKE '%%(email)%%'"
    ).fetchall()
    assert email_indexes == [("users_email_unique",)]
    legacy = conn.execute(
        "SELECT finished_at IS NULL, rolled_back_at IS NOT NULL FROM _prisma_migrations "
        "WHERE migration_name = '20250926_add_roles_table' AND applied_steps_count = 0 AND logs <> ''"
    ).fetchall()
    assert legacy == [(True, True)] * 3
    assert conn.execute(
        "SELECT count(*) FROM _prisma_migrations WHERE migration_name = %s", (DEFAULT_BASELINE,)
    ).fetchone()[0] == 1
    assert conn.execute(
        "SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NULL AND rolled_back_at IS NULL"
    ).fetchone()[0] == 0
    md = result.asset_materializations_for_node("erp_schema")[0].metadata
    assert md["columns_added"].value == 2
    assert "tasks.title" in md["plan"].value and "legacy_flag" in md["plan"].value
    assert all(check_results(result).values()), check_results(result)


def test_second_run_plans_nothing_and_writes_nothing(erp_url, conn):
    load_drifted_state(conn)
    run_schema(erp_url)
    before = snapshot(erp_url)
    result = run_schema(erp_url)
    assert snapshot(erp_url) == before
    md = result.asset_materializations_for_node("erp_schema")[0].metadata
    assert md["statements"].value == 0
    assert result.asset_materializations_for_node("prisma_migration_history")[0].metadata["changed"].value is False
    assert result.asset_materializations_for_node("system_health_config")[0].metadata["inserted"].value is False


def test_dry_run_records_the_plan_and_leaves_the_catalog_unchanged(erp_url, conn):
    load_drifted_state(conn)
    before = snapshot(erp_url)
    result = dg.materialize(
        [erp_schema], resources={"erp_db": ErpDatabase(url=erp_url), "migrations": PrismaMigrationsFolder()},
        run_config={"ops": {"erp_schema": {"config": {"dry_run": True}}}},
    )
    assert snapshot(erp_url) == before
    assert result.asset_materializations_for_node("erp_schema") == []
    observations = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    plan = observations[0].event_specific_data.asset_observation.metadata["plan"].value
    assert 'ALTER TABLE "system_health_config" ADD COLUMN "metricsRetentionDays" integer DEFAULT 7' in plan


def _error_of(result) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    data = failures[0].event_specific_data
    parts, error = [data.user_failure_data.description if data.user_failure_data else ""], data.error
    while error is not None:
        parts.append(error.message)
        error = error.cause
    return "\n".join(p for p in parts if p)


def test_malformed_sql_names_the_file_and_statement_and_writes_nothing(erp_url, migrations_copy):
    baseline = migrations_copy / DEFAULT_BASELINE / "migration.sql"
    baseline.write_text(baseline.read_text() + '\nCREATE TABLE "broken" ("id" SERIAL NOT NULL,\n);\n')
    before = snapshot(erp_url)
    result = run_schema(erp_url, migrations_copy, raise_on_error=False)
    assert not result.success
    message = _error_of(result)
    assert str(baseline) in message and "line" in message and "syntax error" in message
    assert snapshot(erp_url) == before


def test_statement_failing_in_the_throwaway_schema_is_named(erp_url, migrations_copy):
    baseline = migrations_copy / DEFAULT_BASELINE / "migration.sql"
    baseline.write_text(baseline.read_text() + '\nALTER TABLE "no_such_table" ADD COLUMN "x" INTEGER;\n')
    with pytest.raises(ErpPipelinesError) as err:
        sync_schema(ErpDatabase(url=erp_url), read_migrations_folder(migrations_copy).get(DEFAULT_BASELINE), log=lambda _: None)
    assert "no_such_table" in str(err.value) and str(baseline) in str(err.value)


def test_migration_folder_without_sql_is_refused(erp_url, migrations_copy):
    (migrations_copy / "20251220_0000_empty").mkdir()
    before = snapshot(erp_url)
    result = run_schema(erp_url, migrations_copy, raise_on_error=False)
    assert "20251220_0000_empty has no migration.sql" in _error_of(result)
    assert snapshot(erp_url) == before


def test_lock_file_naming_another_provider_is_refused(erp_url, migrations_copy):
    (migrations_copy / "migration_lock.toml").write_text('provider = "mysql"\n')
    result = run_schema(erp_url, migrations_copy, raise_on_error=False)
    assert "provider 'mysql'" in _error_of(result) and "migration_lock.toml" in _error_of(result)
    assert snapshot(erp_url) == ({}, {}, {}, {}, {}, [])


def test_unreachable_database_gives_a_clear_error_without_the_password():
    url = "postgresql://erp_user:S3cret-Passw0rd@127.0.0.1:1/erp?connect_timeout=2"
    result = run_schema(url, raise_on_error=False)
    message = _error_of(result)
    assert "Cannot connect to the ERP database" in message and "ERP_DATABASE_URL" in message
    assert "S3cret-Passw0rd" not in message
    assert "erp_user:***@127.0.0.1" in message


def test_not_null_column_without_default_on_a_table_with_rows_is_refused(erp_url, conn, migrations_copy):
    load_drifted_state(conn)
    baseline = migrations_copy / DEFAULT_BASELINE / "migration.sql"
    text = baseline.read_text().replace('CREATE TABLE "users" (', 'CREATE TABLE "users" (\n    "tenant_code" TEXT NOT NULL,', 1)
    baseline.write_text(text)
    before = snapshot(erp_url)
    result = run_schema(erp_url, migrations_copy, raise_on_error=False)
    message = _error_of(result)
    assert "users.tenant_code" in message and "DEFAULT" in message
    assert snapshot(erp_url) == before


def test_orphan_row_leaves_foreign_key_not_valid_and_the_check_warns(erp_url, conn):
    load_drifted_state(conn)
    # A task pointing at a user that does not exist, with the FK missing: the sync cannot validate it.
    conn.execute('ALTER TABLE tasks DROP CONSTRAINT "tasks_createdById_fkey"')
    conn.execute('INSERT INTO tasks (title, "createdById") VALUES (%s, %s)', ("orphan", 9999)) if _has_column(conn, "tasks", "createdById") else None
    result = run_schema(erp_url)
    valid = conn.execute(
        "SELECT convalidated FROM pg_constraint WHERE conname = 'tasks_createdById_fkey'"
    ).fetchone()
    assert valid == (False,)
    evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name == "foreign_keys_validated")
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["offending_rows"].value == {"tasks.tasks_createdById_fkey": 1}


def _has_column(conn, table: str, column: str) -> bool:
    return conn.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_name = %s AND column_name = %s", (table, column)
    ).fetchone() is not None


def test_two_syncs_at_once_end_as_one_sync_would(erp_url, conn):
    load_drifted_state(conn)
    baseline = read_migrations_folder(PrismaMigrationsFolder().folder()).get(DEFAULT_BASELINE)
    db = ErpDatabase(url=erp_url, lock_timeout_ms=20000)
    results, errors = [], []

    def one():
        try:
            results.append(sync_schema(db, baseline, log=lambda _: None))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(len(r.plan.steps) for r in results)[0] == 0
    assert len(sync_schema(db, baseline, log=lambda _: None).plan.steps) == 0


def test_sync_gives_up_after_its_lock_timeout_while_prisma_holds_the_lock(erp_url):
    baseline = read_migrations_folder(PrismaMigrationsFolder().folder()).get(DEFAULT_BASELINE)
    with psycopg.connect(erp_url, autocommit=True) as prisma:
        prisma.execute("SELECT pg_advisory_lock(%s)", (PRISMA_ADVISORY_LOCK,))
        db = ErpDatabase(url=erp_url, lock_timeout_ms=200)
        with pytest.raises(ErpPipelinesError) as err:
            sync_schema(db, baseline, max_attempts=2, backoff_s=0.05, log=lambda _: None)
    message = str(err.value)
    assert "Gave up after 2 attempts" in message and "72707369" in message and "Nothing was changed" in message
    assert snapshot(erp_url) == ({}, {}, {}, {}, {}, [])


def test_post_baseline_migration_is_applied_once(erp_url, conn):
    run_schema(erp_url)
    run_schema(erp_url)
    assert conn.execute(
        "SELECT count(*), min(applied_steps_count) FROM _prisma_migrations WHERE migration_name = '20251215_0000_add_report_exports'"
    ).fetchone() == (1, 1)
    assert conn.execute("SELECT to_regclass('report_exports') IS NOT NULL").fetchone()[0]


def test_failing_post_baseline_migration_leaves_no_row_and_no_partial_change(erp_url, conn, migrations_copy):
    bad = migrations_copy / "20251230_0000_bad"
    bad.mkdir()
    (bad / "migration.sql").write_text(
        'CREATE TABLE "half_done" ("id" SERIAL PRIMARY KEY);\nALTER TABLE "users" ADD COLUMN "x" INTEGER REFERENCES "nope"("id");\n'
    )
    result = run_schema(erp_url, migrations_copy, raise_on_error=False)
    message = _error_of(result)
    assert "20251230_0000_bad" in message and "statement 2" in message and "line 2" in message
    assert conn.execute("SELECT to_regclass('half_done')").fetchone()[0] is None
    # refused before the history step wrote anything: not even Prisma's table (so no row of it either)
    assert conn.execute("SELECT to_regclass('_prisma_migrations')").fetchone()[0] is None
    # mark_applied resolves it by hand, as `prisma migrate resolve --applied` would.
    resolved = run_schema(erp_url, migrations_copy, raise_on_error=False,
                          run_config={"ops": {"prisma_migration_history": {"config": {"mark_applied": ["20251230_0000_bad"]}}}})
    assert conn.execute(
        "SELECT count(*) FROM _prisma_migrations WHERE migration_name = '20251230_0000_bad' AND finished_at IS NOT NULL"
    ).fetchone()[0] == 1
    # The recorded history no longer replays on an empty schema: said by the tables check, never swallowed.
    tables = next(e for e in resolved.get_asset_check_evaluations() if e.check_name == "tables_present")
    assert not tables.passed and "20251230_0000_bad" in tables.description


def test_edited_applied_migration_is_reported_never_rewritten(erp_url, conn, migrations_copy):
    run_schema(erp_url, migrations_copy)
    checksum = conn.execute("SELECT checksum FROM _prisma_migrations WHERE migration_name = %s", (DEFAULT_BASELINE,)).fetchone()
    sql_file = migrations_copy / DEFAULT_BASELINE / "migration.sql"
    sql_file.write_text(sql_file.read_text() + "\n-- edited after apply\n")
    result = run_schema(erp_url, migrations_copy)
    evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name == "checksums_match")
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert conn.execute("SELECT checksum FROM _prisma_migrations WHERE migration_name = %s", (DEFAULT_BASELINE,)).fetchone() == checksum


def test_invalid_health_config_values_are_refused_before_writing(erp_url, conn):
    run_schema(erp_url, run_config=None)
    conn.execute("DELETE FROM system_health_config")
    result = run_schema(erp_url, run_config={"ops": {"system_health_config": {"config": {"metrics_retention_days": 0}}}}, raise_on_error=False)
    assert "metricsRetentionDays" in _error_of(result)
    assert conn.execute("SELECT count(*) FROM system_health_config").fetchone()[0] == 0


def test_health_config_check_names_the_bad_key_of_an_operator_edited_row(erp_url, conn):
    run_schema(erp_url)
    conn.execute("""UPDATE system_health_config SET thresholds = jsonb_set(thresholds, '{cacheHitRate}', '{"warning": 50, "critical": 70}')""")
    result = run_schema(erp_url)
    evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name == "health_config_valid")
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["bad_keys"].value == ["thresholds.cacheHitRate"]


# PostgreSQL 18 only: what is tested is the sensor's run request (a dry run, no write), not the server; the
# dry sync on 15 is covered by test_dry_run_records_the_plan_and_leaves_the_catalog_unchanged[15].
@pytest.mark.parametrize("pg_major", ["18"])
def test_migrations_sensor_request_runs_a_dry_sync_only_and_changes_nothing(erp_url, conn, pg_major):
    from erp_pipelines.automation.sensors import migrations_folder_sensor
    from erp_pipelines.schema.definitions import schema_sync_job

    load_drifted_state(conn)
    before = snapshot(erp_url)
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"migrations": PrismaMigrationsFolder()})
        request = migrations_folder_sensor(context).run_requests[0]
        defs = dg.Definitions(
            assets=SCHEMA_ASSETS, jobs=[schema_sync_job],
            resources={"erp_db": ErpDatabase(url=erp_url), "migrations": PrismaMigrationsFolder()},
        )
        result = defs.resolve_job_def("schema_sync_job").execute_in_process(
            run_config=request.run_config, asset_selection=request.asset_selection, instance=instance
        )
    assert result.success
    assert snapshot(erp_url) == before
    assert result.get_asset_materialization_events() == []
    assert {e.check_name for e in result.get_asset_check_evaluations()} == {"rows_preserved", "foreign_keys_validated"}


def test_truncated_migration_names_its_last_line(migrations_copy):
    baseline = migrations_copy / DEFAULT_BASELINE / "migration.sql"
    baseline.write_text(baseline.read_text() + '\nCREATE TABLE "cut_off" (\n')
    with pytest.raises(ErpPipelinesError) as err:
        read_migrations_folder(migrations_copy).get(DEFAULT_BASELINE).statements  # noqa: B018
    lines = baseline.read_text().splitlines()
    assert f"line {len(lines)}: CREATE TABLE \"cut_off\" (" in str(err.value)
    assert "end of input" in str(err.value)
