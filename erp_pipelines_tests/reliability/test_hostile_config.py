"""Hostile config row and run config: retention 0, negative, absurd, NULL; thresholds of the wrong type; a
backupLocation holding SQL or shell metacharacters. Every value is rejected or stored verbatim, never executed,
and nothing is deleted on a bad retention value."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from erp_pipelines.resources import ErpDatabase
from erp_pipelines.retention.assets import retention_pruning
from erp_pipelines.rollups.assets import system_metric_daily
from erp_pipelines.schema.assets import system_health_config
from erp_pipelines_tests.support.erp_data import create_erp_tables, insert_samples, set_health_config

DAYS_BACK = 20


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    parts = []
    for e in result.all_events:
        if e.event_type_value == "STEP_FAILURE":
            data = e.event_specific_data
            parts.append(data.user_failure_data.description if data.user_failure_data else "")
            error = data.error
            while error is not None:
                parts.append(error.message)
                error = error.cause
    return "\n".join(p for p in parts if p)


@pytest.fixture
def old_rolled_up_samples(conn, erp_url):
    """Samples on 3 days 20 days ago, rolled up (so a valid retention config would delete them)."""
    create_erp_tables(conn)
    set_health_config(conn, metrics_days=7, aggregate_days=365)
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=DAYS_BACK + i) for i in range(3)]
    insert_samples(conn, [(100 + i, 0.5, 10, 1, datetime(d.year, d.month, d.day, 12, i)) for d in days for i in range(4)])
    for d in days:
        dg.materialize([system_metric_daily], partition_key=d.isoformat(), resources={"erp_db": ErpDatabase(url=erp_url)})
    return conn


def _samples(conn) -> int:
    return conn.execute("SELECT count(*) FROM system_metric_samples").fetchone()[0]


BAD_ROWS = [
    ('"metricsRetentionDays"', 0),
    ('"metricsRetentionDays"', -7),
    ('"metricsRetentionDays"', 2147483647),
    ('"metricsRetentionDays"', None),
    ('"aggregateRetentionDays"', 0),
    ('"aggregateRetentionDays"', -1),
    ('"aggregateRetentionDays"', None),
    ('"aggregateRetentionDays"', 3),  # below metricsRetentionDays
    ("thresholds", json.dumps("high")),
    ("thresholds", json.dumps({"latency": {"warning": "500", "critical": "1000"}})),
    ("thresholds", json.dumps({"latency": {"warning": 1000, "critical": 500}})),
    ("thresholds", json.dumps([1, 2, 3])),
    ('"backupLocation"', ""),
]


@pytest.mark.slow
def test_bad_config_row_values_delete_nothing_and_name_the_key(old_rolled_up_samples, erp_url):
    conn = old_rolled_up_samples
    before = _samples(conn)
    resources = {"erp_db": ErpDatabase(url=erp_url)}
    column_names = {
        '"metricsRetentionDays"': "metricsRetentionDays", '"aggregateRetentionDays"': "aggregateRetentionDays",
        "thresholds": "thresholds", '"backupLocation"': "backupLocation",
    }
    from psycopg import sql

    for column, value in BAD_ROWS:
        set_health_config(conn, metrics_days=7, aggregate_days=365)
        placeholder = sql.SQL("%s::jsonb" if column == "thresholds" else "%s")
        conn.execute(sql.SQL("UPDATE system_health_config SET {} = {} WHERE id = 1").format(
            sql.Identifier(column_names[column]), placeholder), (value,))
        result = dg.materialize([retention_pruning], resources=resources, raise_on_error=False)
        assert not result.success, (column, value)
        message = _failure_text(result)
        assert "nothing is deleted" in message and column_names[column] in message, (column, value, message)
        assert _samples(conn) == before, (column, value)
    conn.execute("DELETE FROM system_health_config")
    result = dg.materialize([retention_pruning], resources=resources, raise_on_error=False)
    assert "no retention configuration" in _failure_text(result) and _samples(conn) == before
    # The same data with a valid row is pruned: the refusals above were the config's doing.
    set_health_config(conn, metrics_days=7, aggregate_days=365)
    dg.materialize([retention_pruning], resources=resources)
    assert _samples(conn) == 0


@pytest.mark.parametrize(
    "run_config",
    [
        {"usage_event_retention_days": 0},
        {"usage_event_retention_days": -30},
        {"usage_event_retention_days": 10**9},
        {"usage_event_retention_days": 400},  # above aggregateRetentionDays (365)
        {"batch_size": 0},
        {"batch_size": -5},
    ],
)
def test_bad_retention_run_config_deletes_nothing(old_rolled_up_samples, erp_url, run_config):
    conn = old_rolled_up_samples
    before = _samples(conn)
    result = dg.materialize(
        [retention_pruning], resources={"erp_db": ErpDatabase(url=erp_url)}, raise_on_error=False,
        run_config={"ops": {"retention_pruning": {"config": run_config}}},
    )
    assert not result.success
    assert next(iter(run_config)) in _failure_text(result)
    assert _samples(conn) == before


def test_wrongly_typed_run_config_is_refused_by_dagster_before_any_step(erp_url, conn):
    for bad in ({"metrics_retention_days": None}, {"metrics_retention_days": "7; DROP TABLE users"},
                {"thresholds_json": 5}, {"refresh_interval": "fast"}):
        try:
            result = dg.materialize([system_health_config], resources={"erp_db": ErpDatabase(url=erp_url)},
                                    run_config={"ops": {"system_health_config": {"config": bad}}},
                                    raise_on_error=False)
        except dg.DagsterInvalidConfigError:
            continue  # refused by Dagster's config system before the run started
        # or by the pydantic model when the step builds its config, before the asset body runs
        assert not result.success, bad
        assert "validation error" in _failure_text(result).lower(), bad
    assert conn.execute("SELECT to_regclass('system_health_config')").fetchone()[0] is None


@pytest.mark.parametrize(
    "settings",
    [
        {"metrics_retention_days": 0}, {"metrics_retention_days": -1}, {"metrics_retention_days": 10**6},
        {"aggregate_retention_days": 0}, {"aggregate_retention_days": 5},
        {"thresholds_json": '"high"'}, {"thresholds_json": '{"latency": {"warning": "x", "critical": 2}}'},
        {"thresholds_json": "{not json"}, {"refresh_interval": -5}, {"backup_location": "   "},
    ],
)
def test_bad_health_config_values_are_refused_and_nothing_is_written(erp_url, conn, settings):
    resources = {"erp_db": ErpDatabase(url=erp_url)}
    create_erp_tables(conn)
    result = dg.materialize([system_health_config], resources=resources, raise_on_error=False,
                            run_config={"ops": {"system_health_config": {"config": settings}}})
    assert not result.success
    assert "Traceback" not in _failure_text(result)
    assert conn.execute("SELECT count(*) FROM system_health_config").fetchone()[0] == 0


HOSTILE_LOCATIONS = [
    "'; DROP TABLE users; --",
    "/backups/$(touch {canary})",
    "/backups/`touch {canary}`; rm -rf /tmp/nothing",
    '/backups/"quoted" && touch {canary} | cat > /dev/null',
    "/backups/%s %(x)s {{}} \\ \\x00",
    "/backups/名前/ça\n-- newline",
]


@pytest.mark.parametrize("location", HOSTILE_LOCATIONS)
def test_backup_location_with_sql_or_shell_metacharacters_is_stored_verbatim_never_run(
    erp_url, conn, tmp_path, location
):
    canary = tmp_path / "canary"
    location = location.format(canary=canary).replace("\\x00", "")
    resources = {"erp_db": ErpDatabase(url=erp_url)}
    create_erp_tables(conn)
    result = dg.materialize([system_health_config], resources=resources,
                            run_config={"ops": {"system_health_config": {"config": {"backup_location": location}}}})
    assert result.success
    assert conn.execute('SELECT "backupLocation" FROM system_health_config WHERE id = 1').fetchone()[0] == location
    assert conn.execute("SELECT to_regclass('users')").fetchone()[0] is not None
    assert not canary.exists()
