"""One replay range for both schema assets: ERP_BASELINE_MIGRATION / ERP_REPLAY_FROM, the old per-asset run
config still working, and a disagreement between the two an error naming both."""

from __future__ import annotations

import pytest

from erp_pipelines import settings
from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.prisma.target import DEFAULT_BASELINE, replay_range

ENV = {settings.BASELINE_MIGRATION: "20250601_0000_squash", settings.REPLAY_FROM: "20250101_0000_init"}


def test_replay_range_from_the_environment_is_the_same_for_both_schema_assets():
    for asset in ("erp_schema", "prisma_migration_history"):
        assert replay_range(None, None, asset, ENV) == ("20250601_0000_squash", "20250101_0000_init")


def test_replay_range_from_run_config_alone_still_works_and_defaults_to_the_demo_baseline():
    assert replay_range("20250601_0000_squash", "20250101_0000_init", "erp_schema", {}) == (
        "20250601_0000_squash", "20250101_0000_init")
    assert replay_range(None, None, "erp_schema", {}) == (DEFAULT_BASELINE, None)
    assert replay_range("20250601_0000_squash", None, "erp_schema", ENV) == ENV_PAIR


ENV_PAIR = ("20250601_0000_squash", "20250101_0000_init")


def test_run_config_disagreeing_with_the_environment_is_an_error_naming_both():
    with pytest.raises(ErpPipelinesError) as refused:
        replay_range(None, "20250301_0000_other", "prisma_migration_history", ENV)
    message = str(refused.value)
    assert "replay_from" in message and settings.REPLAY_FROM in message and "prisma_migration_history" in message
