"""docs/production.md's description of dagster.yaml states the numbers dagster.yaml has (it said
`max_concurrent_runs: 4` where the file had 10)."""

from __future__ import annotations

import re

import yaml

from erp_pipelines.settings import PROJECT_ROOT


def test_production_docs_state_the_run_and_pool_limits_of_dagster_yaml():
    config = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text("utf-8"))
    doc = (PROJECT_ROOT / "docs" / "production.md").read_text("utf-8")
    runs = config["concurrency"]["runs"]["max_concurrent_runs"]
    assert re.findall(r"max_concurrent_runs: (\d+)", doc) == [str(runs)]
    assert f"starts at most {runs} runs at once" in doc
    pools = config["concurrency"]["pools"]["default_limit"]
    assert re.findall(r"concurrency\.pools\.default_limit: (\d+)", doc) == [str(pools)]
