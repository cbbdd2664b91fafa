"""A frozen copy of the two rollups' day statements as they were before the rollups became component instances.

Why frozen: the identical-results test (rollups/test_rollup_instances_match_frozen_sql.py) computes both
aggregates with these statements and with the instances on the same generated data and compares every row,
so a change in the instances' results shows even when rollups/sql.py changes too. Never edit these; they
are the reference (copied from erp_pipelines/rollups/sql.py at commit 2bc56e5).
"""

# The write statement of system_metric_daily ({raw_row_hash}: rollups/row_hash.py's per-row expression).
FROZEN_METRIC_DAY_UPSERT = """WITH t AS (
    SELECT count(*) AS samples,
           coalesce(sum({raw_row_hash}), 0) AS raw_hash,
           -- bigint products (an int latency times an int weight cannot overflow) summed exactly as
           -- numeric: the same value as numeric products, ~2x cheaper per sample; a float latency column
           -- would make it a float product
           sum("latencyMs" * greatest("reqCount", 1)::bigint) FILTER (WHERE "latencyMs" IS NOT NULL)
               AS latency_weighted,
           sum(greatest("reqCount", 1)) FILTER (WHERE "latencyMs" IS NOT NULL) AS latency_weight,
           coalesce(sum("reqCount"), 0) AS req,
           coalesce(sum("errCount"), 0) AS err,
           avg("errorRatePct") AS plain_error_rate
    FROM system_metric_samples
    WHERE collected_at >= %(day_start)s AND collected_at < %(day_end)s
),
fresh AS (
    SELECT round(t.latency_weighted / t.latency_weight)::int AS latency,
           CASE WHEN t.req > 0 THEN round(100.0 * t.err / t.req, 2)::float8 ELSE t.plain_error_rate END
               AS error_rate,
           t.req,  -- bigint sums, no int cast: they fit unless the column is int and the day exceeds 2^31
           t.err
    FROM t
    WHERE t.samples > 0
),
written AS (
    INSERT INTO system_metric_daily AS d
        (day, "avgLatencyMs", "avgErrorRatePct", "reqCount", "errCount", created_at)
    SELECT %(day_start)s, latency, error_rate, req, err, %(now)s
    FROM fresh
    ON CONFLICT (day) DO UPDATE SET
        "avgLatencyMs" = EXCLUDED."avgLatencyMs",
        "avgErrorRatePct" = EXCLUDED."avgErrorRatePct",
        "reqCount" = EXCLUDED."reqCount",
        "errCount" = EXCLUDED."errCount"
    WHERE (d."avgLatencyMs", d."avgErrorRatePct", d."reqCount", d."errCount")
          IS DISTINCT FROM
          (EXCLUDED."avgLatencyMs", EXCLUDED."avgErrorRatePct", EXCLUDED."reqCount", EXCLUDED."errCount")
    RETURNING (xmax = 0) AS inserted
)
SELECT t.samples AS raw_rows, t.raw_hash, f.latency, f.error_rate, f.req, f.err,
       (SELECT count(*) FROM written WHERE inserted) AS inserted,
       (SELECT count(*) FROM written WHERE NOT inserted) AS updated
FROM t LEFT JOIN fresh AS f ON true
"""

# The write statement of client_daily_usage (its aggregate row hash already put in).
FROZEN_USAGE_DAY_REPLACE = """WITH typed AS (
    SELECT client_id, module_id, event_type, count(*)::int AS events, sum({raw_row_hash}) AS raw_hash
    FROM client_usage_events
    WHERE occurred_at >= %(day_start)s AND occurred_at < %(day_end)s
    GROUP BY client_id, module_id, event_type
),
per_type AS (
    SELECT event_type, lower(event_type) AS lowered,
           CASE WHEN lower(event_type) = ANY(%(view_types)s::text[]) THEN 1
                WHEN lower(event_type) = ANY(%(create_types)s::text[]) THEN 2
                WHEN lower(event_type) = ANY(%(edit_types)s::text[]) THEN 3
                WHEN lower(event_type) = ANY(%(delete_types)s::text[]) THEN 4
                ELSE 0 END AS category,
           sum(events) AS events,
           coalesce(sum(events) FILTER (WHERE module_id IS NULL), 0) AS null_module,
           sum(raw_hash) AS raw_hash
    FROM typed
    GROUP BY event_type
),
counts AS (
    SELECT t.client_id, t.module_id,
           coalesce(sum(t.events) FILTER (WHERE k.category = 1), 0)::int AS view_count,
           coalesce(sum(t.events) FILTER (WHERE k.category = 2), 0)::int AS create_count,
           coalesce(sum(t.events) FILTER (WHERE k.category = 3), 0)::int AS edit_count,
           coalesce(sum(t.events) FILTER (WHERE k.category = 4), 0)::int AS delete_count
    FROM typed AS t JOIN per_type AS k USING (event_type)
    WHERE t.module_id IS NOT NULL
    GROUP BY t.client_id, t.module_id
),
users AS (
    SELECT client_id, module_id, count(*)::int AS active_users
    FROM (
        SELECT DISTINCT client_id, module_id, user_id
        FROM client_usage_events
        WHERE occurred_at >= %(day_start)s AND occurred_at < %(day_end)s
          AND module_id IS NOT NULL AND user_id IS NOT NULL
    ) AS u
    GROUP BY client_id, module_id
),
fresh AS (
    SELECT c.client_id, c.module_id, c.view_count, c.create_count, c.edit_count, c.delete_count,
           coalesce(u.active_users, 0) AS active_users
    FROM counts AS c LEFT JOIN users AS u USING (client_id, module_id)
),
removed AS (
    DELETE FROM client_daily_usage AS d
    WHERE d.date = %(day)s
      AND EXISTS (SELECT 1 FROM typed)
      AND NOT EXISTS (SELECT 1 FROM fresh AS f WHERE f.client_id = d.client_id AND f.module_id = d.module_id)
    RETURNING 1
),
written AS (
    INSERT INTO client_daily_usage AS d
        (date, client_id, module_id, view_count, create_count, edit_count, delete_count, active_users, updated_at)
    SELECT %(day)s, client_id, module_id, view_count, create_count, edit_count, delete_count, active_users,
           %(now)s
    FROM fresh
    ON CONFLICT (date, client_id, module_id) DO UPDATE SET
        view_count = EXCLUDED.view_count,
        create_count = EXCLUDED.create_count,
        edit_count = EXCLUDED.edit_count,
        delete_count = EXCLUDED.delete_count,
        active_users = EXCLUDED.active_users,
        updated_at = EXCLUDED.updated_at
    WHERE (d.view_count, d.create_count, d.edit_count, d.delete_count, d.active_users)
          IS DISTINCT FROM
          (EXCLUDED.view_count, EXCLUDED.create_count, EXCLUDED.edit_count, EXCLUDED.delete_count,
           EXCLUDED.active_users)
    RETURNING (xmax = 0) AS inserted
)
SELECT (SELECT coalesce(sum(events), 0) FROM per_type)::bigint AS raw_rows,
       (SELECT coalesce(sum(raw_hash), 0) FROM per_type) AS raw_hash,
       (SELECT coalesce(jsonb_agg(jsonb_build_array(s.lowered, s.events, s.null_module)), '[]'::jsonb)
        FROM (
            SELECT lowered, sum(events)::bigint AS events, sum(null_module)::bigint AS null_module
            FROM per_type GROUP BY lowered
        ) AS s) AS by_type,
       (SELECT count(*) FROM fresh) AS rollup_rows,
       (SELECT coalesce(sum(hash_record_extended(row(client_id, module_id, view_count, create_count, edit_count, delete_count, active_users), 0)), 0) FROM fresh) AS rollup_hash,
       (SELECT count(*) FROM written WHERE inserted) AS inserted,
       (SELECT count(*) FROM written WHERE NOT inserted) AS updated,
       (SELECT count(*) FROM removed) AS deleted
"""

# METRIC_DAY_READ as it was before it grouped the day by reqCount (the write's sums per sample, the fallback
# rate read only for a day without requests), 2026-12-05: the generated comparison in
# test_verified_retention.py holds the grouped read to it, negative and NULL counts included.
FROZEN_METRIC_DAY_READ = """WITH t AS (
    SELECT count(*) AS samples,
           coalesce(sum({raw_row_hash}), 0) AS raw_hash,
           -- bigint products (an int latency times an int weight cannot overflow) summed exactly as
           -- numeric: the same value as numeric products, ~2x cheaper per sample; a float latency column
           -- would make it a float product
           sum("latencyMs" * greatest("reqCount", 1)::bigint) FILTER (WHERE "latencyMs" IS NOT NULL)
               AS latency_weighted,
           sum(greatest("reqCount", 1)) FILTER (WHERE "latencyMs" IS NOT NULL) AS latency_weight,
           coalesce(sum("reqCount"), 0) AS req,
           coalesce(sum("errCount"), 0) AS err,
           -- NaN and +-Infinity are kept out of the fallback mean (NaN orders above every number) and counted
           count(*) FILTER (WHERE NOT ("errorRatePct" < 'Infinity' AND "errorRatePct" > '-Infinity'))
               AS non_finite
    FROM system_metric_samples
    WHERE collected_at >= %(day_start)s AND collected_at < %(day_end)s
)
SELECT t.samples AS raw_rows, t.raw_hash,
       round(t.latency_weighted / t.latency_weight)::int AS latency,
       CASE WHEN t.req > 0 THEN round(100.0 * t.err / t.req, 2)::float8 ELSE (SELECT (sum("errorRatePct"::numeric) FILTER (WHERE "errorRatePct" < 'Infinity' AND "errorRatePct" > '-Infinity')
        / nullif(count(*) FILTER (WHERE "errorRatePct" < 'Infinity' AND "errorRatePct" > '-Infinity'), 0))::float8
FROM system_metric_samples
WHERE collected_at >= %(day_start)s AND collected_at < %(day_end)s) END AS error_rate,
       t.req,  -- bigint sums: written as they are, so a day past 2^31 fails on an int column (the step says so)
       t.err,
       t.non_finite
FROM t
"""
