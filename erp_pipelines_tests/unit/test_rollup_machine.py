"""Every rollup's asset comes from the one builder (rollups/machine.py), and a body that does not match its
spec is refused when the definitions load (no database)."""

from __future__ import annotations

import dataclasses

import pytest

from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.rollups import machine
from erp_pipelines.rollups.registry import ROLLUP_ASSETS, ROLLUPS, rollup_named
from erp_pipelines.rollups.usage_daily import UsageRollupConfig


def test_every_rollup_asset_the_originals_included_is_built_by_the_one_machine():
    assert {a.key.to_user_string() for a in ROLLUP_ASSETS} >= {"system_metric_daily", "client_daily_usage"}
    for spec, asset in zip(ROLLUPS, ROLLUP_ASSETS, strict=True):
        fn = asset.op.compute_fn.decorated_fn
        assert (fn.__module__, fn.__qualname__) == (machine.__name__, "build_asset.<locals>._rollup"), spec
        assert isinstance(spec.body, machine.RollupBody)
        assert {k.name for k in asset.check_keys} == set(spec.check_names)


def test_what_differs_between_rollups_is_data_on_their_specs():
    usage, metric = rollup_named("client_daily_usage"), rollup_named("system_metric_daily")
    assert usage.body.config_type is UsageRollupConfig
    assert (usage.body.raw_rows_label, metric.body.raw_rows_label) == ("events_read", "samples_read")
    assert not metric.body.reports_deleted and usage.body.reports_deleted
    per_run = [c.name for c in metric.body.checks if not c.per_day]
    assert per_run == ["no_samples_without_timestamp"]


def test_a_body_without_a_verdict_for_one_of_its_per_day_checks_is_refused():
    usage = rollup_named("client_daily_usage")
    broken = dataclasses.replace(usage, body=dataclasses.replace(usage.body, day_checks={}))
    with pytest.raises(ErpPipelinesError, match="no_events_without_module"):
        machine.build_asset(broken)


def test_a_spec_naming_a_check_its_body_does_not_declare_is_refused():
    metric = rollup_named("system_metric_daily")
    broken = dataclasses.replace(metric, check_names=(*metric.check_names, "made_up_check"))
    with pytest.raises(ErpPipelinesError, match="made_up_check"):
        machine.build_asset(broken)
