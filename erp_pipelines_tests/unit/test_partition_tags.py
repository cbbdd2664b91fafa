"""The run-tag names partitions.py spells out instead of importing Dagster's private module still agree with it."""

from dagster._core.storage import tags

from erp_pipelines import partitions


def test_the_partition_tag_names_are_dagsters_own():
    assert partitions.PARTITION_NAME_TAG == tags.PARTITION_NAME_TAG
    assert partitions.ASSET_PARTITION_RANGE_START_TAG == tags.ASSET_PARTITION_RANGE_START_TAG
    assert partitions.ASSET_PARTITION_RANGE_END_TAG == tags.ASSET_PARTITION_RANGE_END_TAG
