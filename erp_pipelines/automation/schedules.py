"""`nightly_rollup_schedule`: 02:00 UTC, yesterday's partition of both rollups, then retention.

Outage catch-up is the schedule's own job, not a human's: each tick requests the range from the first
partition after the newest one already covered up to yesterday, as ONE run (the rollups' single-run
backfill policy makes a range one run). "Covered" means materialized for BOTH rollups, or part of a
nightly run still queued or in progress. So after a scheduler (or database) outage of N days, the first
tick that runs requests the N missing days in one run:

- the daemon evaluates missed ticks on restart (dagster.yaml `schedules: max_catchup_runs`, default 5);
  the first of them asks for the whole gap, and the following ones see that run in flight and only ask
  for their own day, so nothing is requested twice;
- if the daemon evaluates no missed tick at all, the next 02:00 tick asks for the gap anyway.

The catch-up reaches back at most `MAX_CATCHUP_DAYS`; a longer gap (or a database that never had a
rollup) is a deliberate backfill from the UI, not something a schedule should start on its own. A fresh
deployment whose rollups were never materialized asks for yesterday only.

Lookback (dbt's `lookback` for microbatches): the run also re-rolls the `lookback_days()` days before
yesterday (ERP_ROLLUP_LOOKBACK_DAYS, default 2; 0 turns it off), so a change the late-data sensor did not
refresh (change capture opted out, a sensor stopped) is still folded in within N days, and before retention
could reach the day. Only days already covered are looked back at (a fresh deployment still asks for
yesterday only) and none of a nightly run still in flight (it rolls them up anyway); the catch-up range,
when longer, already contains them. So a normal night is ONE run of yesterday-N .. yesterday.
"""

from datetime import UTC, date, timedelta

import dagster as dg

from erp_pipelines import settings
from erp_pipelines.automation.jobs import ROLLUP_KEYS, nightly_rollup_job
from erp_pipelines.partitions import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    DAILY_PARTITIONS,
    PARTITION_NAME_TAG,
)

NIGHTLY_CRON = "0 2 * * *"
MAX_CATCHUP_DAYS = 31
LOOKBACK_ENV = settings.ROLLUP_LOOKBACK_DAYS
DEFAULT_LOOKBACK_DAYS = settings.DEFAULT_LOOKBACK_DAYS
IN_FLIGHT_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def _newest_materialized(instance: dg.DagsterInstance, upto: date) -> date | None:
    """The newest day, up to `upto`, materialized for every rollup (None if one has none)."""
    newest: list[date] = []
    for key in ROLLUP_KEYS:
        days = [date.fromisoformat(k) for k in instance.get_materialized_partitions(dg.AssetKey(key))]
        days = [d for d in days if d <= upto]
        if not days:
            return None
        newest.append(max(days))
    return min(newest)


def _newest_in_flight(instance: dg.DagsterInstance) -> date | None:
    """The last day of any nightly run still queued or running (bounded: the 50 newest such runs)."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name=nightly_rollup_job.name, statuses=IN_FLIGHT_STATUSES), limit=50
    )
    ends = [run.tags.get(ASSET_PARTITION_RANGE_END_TAG) or run.tags.get(PARTITION_NAME_TAG) for run in runs]
    days = [date.fromisoformat(end) for end in ends if end]
    return max(days) if days else None


def lookback_days() -> int:
    """ERP_ROLLUP_LOOKBACK_DAYS (default 2): days before yesterday the nightly run re-rolls; 0 = none."""
    return settings.rollup_lookback_days()


def nightly_range(
    instance: dg.DagsterInstance, yesterday: date, lookback: int = DEFAULT_LOOKBACK_DAYS
) -> tuple[date, date]:
    """The days a tick for `yesterday` should materialize: (first, last), last always yesterday."""
    first_partition = date.fromisoformat(DAILY_PARTITIONS.get_first_partition_key())
    in_flight = _newest_in_flight(instance)
    covered = [d for d in (_newest_materialized(instance, yesterday), in_flight) if d]
    if not covered:
        return yesterday, yesterday
    start = max(covered) + timedelta(days=1)
    look_from = yesterday - timedelta(days=lookback)
    if in_flight is not None:
        look_from = max(look_from, in_flight + timedelta(days=1))
    start = min(start, look_from)
    start = max(start, yesterday - timedelta(days=MAX_CATCHUP_DAYS - 1), first_partition)
    return min(start, yesterday), yesterday


@dg.schedule(
    job=nightly_rollup_job,
    cron_schedule=NIGHTLY_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="02:00 UTC: yesterday's rollups then retention; also catches up days missed by an outage.",
)
def nightly_rollup_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    yesterday = context.scheduled_execution_time.astimezone(UTC).date() - timedelta(days=1)
    if yesterday < date.fromisoformat(DAILY_PARTITIONS.get_first_partition_key()):
        return dg.SkipReason(f"{yesterday} is before the first partition; nothing to roll up yet.")
    lookback = lookback_days()
    start, end = nightly_range(context.instance, yesterday, lookback)
    catch_up = start < yesterday - timedelta(days=lookback)
    tags = {"erp/trigger": "nightly_catchup" if catch_up else "nightly", "erp/lookback_days": str(lookback)}
    if start == end:
        return dg.RunRequest(run_key=f"nightly-{end}", partition_key=str(end), tags=tags)
    if catch_up:
        context.log.info(f"Catching up {(end - start).days + 1} days missed: {start}..{end} in one run.")
    else:
        context.log.info(f"Yesterday and {(end - start).days} day(s) of lookback: {start}..{end} in one run.")
    return dg.RunRequest(
        run_key=f"nightly-{start}-{end}",
        tags={**tags, ASSET_PARTITION_RANGE_START_TAG: str(start), ASSET_PARTITION_RANGE_END_TAG: str(end)},
    )
