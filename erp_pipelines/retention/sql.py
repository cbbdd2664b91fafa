"""Every SQL statement of `retention_pruning`.

Raw rows are deleted one UTC day at a time, and only when that day's aggregate reconciles with them (the
reconciliation statements are the rollups' own: `erp_pipelines.rollups.sql.METRIC_DAY_RECONCILE` and
`USAGE_DAY_MISMATCHES`). Inside a day, deletes are bounded primary-key ranges (`id >= lo AND id < hi`)
plus the day's time range, so each statement touches at most `batch_size` ids and uses the PK index;
never `id IN (SELECT ... LIMIT n)`. Timestamps are naive UTC parameters (see rollups/sql.py).
Tables are unqualified: the connection's search_path is the ERP schema.
"""

from __future__ import annotations

# The oldest day, on or after `from_start` and before `cutoff`, that still has raw rows (index on the
# timestamp). Walking day by day this way skips empty stretches and the days already pruned.
NEXT_SAMPLE_DAY = """
SELECT date_trunc('day', min(collected_at))::date FROM system_metric_samples
WHERE collected_at >= %(from_start)s AND collected_at < %(cutoff)s
"""
NEXT_EVENT_DAY = """
SELECT date_trunc('day', min(occurred_at))::date FROM client_usage_events
WHERE occurred_at >= %(from_start)s AND occurred_at < %(cutoff)s
"""

# One day's usage events: how many and their id range (the delete batches walk it).
EVENT_DAY_IDS = """
SELECT count(*), min(id), max(id) FROM client_usage_events
WHERE occurred_at >= %(day_start)s AND occurred_at < %(day_end)s
"""

DELETE_SAMPLES_BATCH = """
DELETE FROM system_metric_samples
WHERE id >= %(lo)s AND id < %(hi)s AND collected_at >= %(day_start)s AND collected_at < %(day_end)s
"""
DELETE_EVENTS_BATCH = """
DELETE FROM client_usage_events
WHERE id >= %(lo)s AND id < %(hi)s AND occurred_at >= %(day_start)s AND occurred_at < %(day_end)s
"""

# Aggregates: whole old days only. system_metric_daily has one row per day, deleted in id ranges;
# client_daily_usage is deleted one `date` (the leading primary-key column) per transaction.
OLD_METRIC_DAILY_IDS = """
SELECT min(id), max(id), count(*) FROM system_metric_daily WHERE day < %(cutoff)s
"""
DELETE_METRIC_DAILY_BATCH = """
DELETE FROM system_metric_daily WHERE id >= %(lo)s AND id < %(hi)s AND day < %(cutoff)s
"""
OLDEST_USAGE_DAY = """
SELECT min(date) FROM client_daily_usage WHERE date < %(cutoff_day)s
"""
DELETE_USAGE_DAY = """
DELETE FROM client_daily_usage WHERE date = %(day)s
"""
