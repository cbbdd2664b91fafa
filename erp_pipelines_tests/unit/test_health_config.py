"""health_config.py: one definition of a valid system_health_config row."""

from __future__ import annotations

import pytest

from erp_pipelines import health_config as hc


def config(**changes) -> hc.HealthConfig:
    values = {
        "thresholds": hc.DEFAULT_THRESHOLDS,
        "backup_location": hc.DEFAULT_BACKUP_LOCATION,
        "refresh_interval": hc.DEFAULT_REFRESH_INTERVAL_MS,
        "metrics_retention_days": hc.DEFAULT_METRICS_RETENTION_DAYS,
        "aggregate_retention_days": hc.DEFAULT_AGGREGATE_RETENTION_DAYS,
    }
    return hc.HealthConfig(**{**values, **changes})


def keys(cfg: hc.HealthConfig) -> list[str]:
    return [key for key, _ in hc.validate_config(cfg)]


def test_the_erp_defaults_are_a_valid_row():
    assert hc.validate_config(config()) == []


def test_thresholds_are_read_from_a_json_string_or_an_object_and_nothing_else():
    assert hc.parse_thresholds('{"latency": {"warning": 1, "critical": 2}}') == {"latency": {"warning": 1, "critical": 2}}
    assert hc.parse_thresholds({"a": 1}) == {"a": 1}
    assert hc.parse_thresholds("not json") is None
    assert hc.parse_thresholds("[1, 2]") is None
    assert hc.parse_thresholds(None) is None


@pytest.mark.parametrize(
    ("thresholds", "key"),
    [
        (None, "thresholds"),
        ({}, "thresholds"),
        ({"latency": {"warning": 500}}, "thresholds.latency"),
        ({"latency": {"warning": True, "critical": 2}}, "thresholds.latency"),
        ({"latency": {"warning": 1000, "critical": 500}}, "thresholds.latency"),
        ({"cacheHitRate": {"warning": 50, "critical": 70}}, "thresholds.cacheHitRate"),
    ],
)
def test_thresholds_need_numeric_levels_in_the_metric_s_direction(thresholds, key):
    assert keys(config(thresholds=thresholds)) == [key]


def test_higher_is_better_metrics_have_critical_below_warning():
    assert keys(config(thresholds={"cacheHitRate": {"warning": 70, "critical": 50}})) == []


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"backup_location": "  "}, "backupLocation"),
        ({"backup_location": None}, "backupLocation"),
        ({"refresh_interval": 0}, "refreshInterval"),
        ({"refresh_interval": 1.5}, "refreshInterval"),
        ({"metrics_retention_days": 0}, "metricsRetentionDays"),
        ({"metrics_retention_days": 366, "aggregate_retention_days": 1825}, "metricsRetentionDays"),
        ({"metrics_retention_days": True}, "metricsRetentionDays"),
        ({"aggregate_retention_days": 29}, "aggregateRetentionDays"),
        ({"aggregate_retention_days": 1826}, "aggregateRetentionDays"),
        ({"metrics_retention_days": 40, "aggregate_retention_days": 30}, "aggregateRetentionDays"),
    ],
)
def test_each_out_of_range_setting_is_named(changes, key):
    assert keys(config(**changes)) == [key]


def test_a_missing_refresh_interval_is_allowed():
    assert keys(config(refresh_interval=None)) == []
