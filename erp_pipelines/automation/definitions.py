"""The automation domain: nightly job and schedule, late-data / migrations / observation / freshness sensors."""

import dagster as dg

from erp_pipelines.automation.jobs import nightly_rollup_job, retention_job, rollup_refresh_job
from erp_pipelines.automation.schedules import nightly_rollup_schedule
from erp_pipelines.automation.sensors import (
    erp_raw_tables_sensor,
    late_data_sensor,
    migrations_folder_sensor,
    rollup_freshness_sensor,
)

defs = dg.Definitions(
    jobs=[nightly_rollup_job, rollup_refresh_job, retention_job],
    schedules=[nightly_rollup_schedule],
    sensors=[erp_raw_tables_sensor, late_data_sensor, migrations_folder_sensor, rollup_freshness_sensor],
)
