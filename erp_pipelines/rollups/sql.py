"""Every SQL statement of the daily rollups, one UTC day per statement.

Why one day per statement: measured on PG18, a 30-day rollup written as ONE statement gets a bad plan (it
walks the client_id index in random uuid order), while a one-day statement uses the `occurred_at` /
`collected_at` index range. So a backfill iterates these statements day by day (see assets.py).

Conventions shared by all statements:
- `%(day_start)s` / `%(day_end)s` are naive `datetime`s holding UTC midnight of the day and of the next
  day; psycopg sends them as `timestamp`, so comparing them with the `timestamp without time zone`
  columns involves no time zone at all: the session `TimeZone` cannot move a row to another day. The
  columns are never wrapped (`date(ts)`, `AT TIME ZONE`), so the index range is used.
- Tables are unqualified; the caller sets `search_path` to `ErpDatabase.db_schema` for the transaction.
- Values are always parameters, never formatted into the text.

Benchmarks import these constants and time them; another test EXPLAINs them. Keep them self-contained.
"""

from __future__ import annotations

# -- the per-row hashes -----------------------------------------------------------------------------------
# `{raw_row_hash}` in a write statement below is THE per-row hash of the raw day's fingerprint: the write
# computes the fingerprint in the same read of the day as the aggregate. It depends on the raw table's
# column types, so it is put in per connection by `RollupSpec.bind` (rollups/row_hash.py builds it, and the
# same text goes into the fingerprint statement retention runs), so the two always compute the same value
# for the same rows. Ledger entries written with an earlier hash differ once: retention skips such a day
# and marks it for a refresh, the refresh writes the new fingerprint, and the next retention run prunes it.
#
# The hash of one client_daily_usage row (every column but the day and updated_at): summed over the rows
# the write statement computed, and over the rows read back from the table for the day (USAGE_DAY_READBACK).
# A few hundred rows a day: the generic record hash is cheap enough here.
USAGE_AGGREGATE_ROW_HASH = (
    "hash_record_extended(row(client_id, module_id, view_count, create_count, edit_count, delete_count, "
    "active_users), 0)"
)
AGGREGATE_ROW_HASH_MARK = "{aggregate_row_hash}"


def _with_aggregate_hash(statement: str, aggregate_row_hash: str) -> str:
    """The statement with the aggregate row hash put in (plain text substitution of the constant above)."""
    return statement.replace(AGGREGATE_ROW_HASH_MARK, aggregate_row_hash)


# -- system_metric_daily ----------------------------------------------------------------------------------
#
# Weighted by requests: w = greatest("reqCount", 1), so a sample that served 1000 requests counts 1000
# times as much as an idle one, and an idle (reqCount 0 or NULL) sample still counts once.
#   avgLatencyMs    = round(sum(latencyMs * w) / sum(w)) over samples with a latency
#   reqCount        = sum(reqCount); errCount = sum(errCount)            (NULL counts as 0)
#   avgErrorRatePct = round(100 * errCount / reqCount, 2), or avg(errorRatePct) if no request was counted
# The ERP's own rollup divides a request-weighted sum of latencies by the NUMBER of samples and averages
# the sample error rates without weights, so it can report an average latency above the largest sample
# (e.g. two samples 100 ms x 1000 requests and 200 ms x 0 requests: (100*1000 + 200) / 2 = 50100 ms),
# and an error rate that disagrees with errCount/reqCount. Here both are true weighted means, so
# min(latency) <= avgLatencyMs <= max(latency) and avgErrorRatePct is exactly the share of failed requests.
#
# Upserted on the unique `day`; the row is only rewritten when a value changed, so a re-run without new
# data leaves the row (including created_at) byte-for-byte identical. A day without samples (none yet, or
# pruned by retention) gets no row and keeps the one it has: the step writes only when `raw_rows` > 0.
#
# Two statements in the step's snapshot: ONE read of the day (METRIC_DAY_READ) gives the figures, the
# day's fingerprint (raw_rows, raw_hash; the ledger's value, same expression as retention's fingerprint) AND
# the independent recomputation of the figures (below), then METRIC_DAY_WRITE upserts the one row from the
# figures (parameters). The read is a plain SELECT so that PostgreSQL may run it with parallel workers: a
# statement that writes (the upsert inside a CTE, as before) never gets them. The step compares the row read
# back (METRIC_DAY_ROW) with the figures AND with the independent recomputation; only when both agree does
# the ledger record the row's hash (METRIC_ROW_HASH, read back with the row) as verified, which spares retention the
# recomputation (retention/assets.py).
# The fallback error rate of a day without requests: the plain mean of the finite rates (NaN and +-Infinity
# out), summed as numeric so that it is exact, never overflows, and does not depend on the order parallel
# workers add the samples in (a float sum does: a re-run could then rewrite the row). Only evaluated for a
# day whose requests sum to 0.
METRIC_PLAIN_ERROR_RATE = """
SELECT (sum("errorRatePct"::numeric) FILTER (WHERE "errorRatePct" < 'Infinity' AND "errorRatePct" > '-Infinity')
        / nullif(count(*) FILTER (WHERE "errorRatePct" < 'Infinity' AND "errorRatePct" > '-Infinity'), 0))::float8
FROM system_metric_samples
WHERE collected_at >= %(day_start)s AND collected_at < %(day_end)s
"""
PLAIN_RATE_MARK = "{plain_rate}"

# Independent reconciliation of one day: the day's figures recomputed from its raw samples, compared with
# the stored aggregate row, EVERY column (latency mean and error rate too), so a late idle sample or an
# updated latency shows. Its formulas are written apart from the write's, so a bug in one formula does not
# pass both (what the two share in the step's read, and what guards that, is said at METRIC_DAY_READ):
# the samples are grouped by their raw reqCount (`g`: one hash aggregate over the day, a few hundred
# distinct values); the day's requests are the sum of each value times its samples, and the latency mean is
# the sum over the groups of each group's plain mean latency times the group's share of the day's weight
# (left unrounded and compared within 0.5 of the stored integer), not the write's sum of products over the
# sum of weights; errors are the plain sum of the column (one formula only); the fallback error rate (used
# for a day without requests only) a sum over a count of the finite rates (NaN/Infinity are out of both,
# so never a mismatch). (A per-sample share from a window function over the day cost twice as much at 166k
# samples a day: the window spooled every sample to disk.)
#
# It runs in two places, from the same text:
# - in the step's own read (METRIC_DAY_READ): the write's sums and these group sums come from ONE grouped
#   read of the day, and the step compares both with the row it wrote;
# - in retention, for a day the ledger does not record as verified (older ledger entries; an aggregate row
#   changed since its rollup): METRIC_DAY_PARTIALS reads one time range [from_ts, to_ts) into partial rows
#   per reqCount, with sums only, so the partial rows of several ranges add up to those of the whole day;
#   METRIC_RECONCILE_FINAL adds them up again per reqCount (`{partials}`: either the whole day's partials as
#   a subquery, METRIC_DAY_RECONCILE, or the pieces' rows sent back as arrays, METRIC_RECONCILE_FROM_PARTS).
#   The fallback error rate is read from the day's rows themselves, which are all still there: retention
#   reads every piece before it deletes one.
# The partial sums per reqCount the independent recomputation adds up (METRIC_INDEPENDENT reads these
# columns): one text for retention's pieces (METRIC_DAY_PARTIALS) and the step's read (METRIC_DAY_READ), so
# the two cannot drift apart.
PARTIAL_SUMS_MARK = "{partial_sums}"
METRIC_PARTIAL_SUMS = """"reqCount" AS requests,
           count(*) AS samples,
           sum({raw_row_hash}) AS raw_hash,
           count("latencyMs") AS timed,
           sum("latencyMs") AS latency_sum,
           sum("errCount") AS err"""
METRIC_DAY_PARTIALS = """
SELECT {partial_sums}
FROM system_metric_samples
WHERE collected_at >= %(from_ts)s AND collected_at < %(to_ts)s
GROUP BY 1
""".replace(PARTIAL_SUMS_MARK, METRIC_PARTIAL_SUMS)
PARTIALS_MARK = "{partials}"
# `g` and `r`: the independent figures from partial rows (`{partials}`: requests, samples, raw_hash, timed,
# latency_sum, err)
METRIC_INDEPENDENT = """
g AS (
    SELECT requests, sum(samples) AS samples, sum(raw_hash) AS raw_hash, sum(timed) AS timed,
           sum(latency_sum) AS latency_sum, sum(err) AS err
    FROM {partials}
    GROUP BY requests
),
r AS (
    SELECT coalesce(sum(samples), 0)::bigint AS samples,
           coalesce(sum(raw_hash), 0) AS raw_hash,
           -- each group's mean latency times its share of the day's weight (a sample weighs its requests,
           -- at least 1)
           sum(latency_sum::numeric / timed * (greatest(requests, 1)::numeric * timed
               / (SELECT sum(greatest(requests, 1)::numeric * timed) FROM g))) FILTER (WHERE timed > 0)
               AS latency_mean,
           coalesce(sum(CASE WHEN requests IS NULL THEN 0 ELSE requests::numeric * samples END), 0) AS req,
           coalesce(sum(err), 0) AS err
    FROM g
)"""
# the independent error rate; the fallback reads the day's rows (only for a day without requests)
METRIC_INDEPENDENT_ERROR_RATE = """CASE WHEN r.req > 0 THEN round(100.0 * r.err / r.req, 2)::float8 ELSE (
           SELECT sum(CASE WHEN "errorRatePct" < 'Infinity' AND "errorRatePct" > '-Infinity' THEN "errorRatePct"::numeric END)
                  / nullif(count(CASE WHEN "errorRatePct" < 'Infinity' AND "errorRatePct" > '-Infinity' THEN 1 END), 0)
           FROM system_metric_samples
           WHERE collected_at >= %(day_start)s AND collected_at < %(day_end)s
       )::float8 END"""
METRIC_RECONCILE_FINAL = (
    """
WITH{independent}
SELECT r.samples,
       r.latency_mean AS latency,  -- unrounded: compared with the stored integer within 0.5
       {independent_rate} AS error_rate,
       r.req, r.err,
       d."avgLatencyMs", d."avgErrorRatePct", d."reqCount", d."errCount", d.day IS NOT NULL AS has_aggregate,
       r.samples AS raw_rows, r.raw_hash
FROM r LEFT JOIN system_metric_daily AS d ON d.day = %(day_start)s
"""
    .replace("{independent}", METRIC_INDEPENDENT)
    .replace("{independent_rate}", METRIC_INDEPENDENT_ERROR_RATE)
)
# The whole day in one statement (the rollup's `recompute_check`; the range is the day).
METRIC_DAY_RECONCILE = METRIC_RECONCILE_FINAL.replace(
    PARTIALS_MARK,
    "(" + METRIC_DAY_PARTIALS.replace("%(from_ts)s", "%(day_start)s").replace("%(to_ts)s", "%(day_end)s") + ") AS p",
)
# The day from the partial rows of its pieces, sent back as one array per column (retention/assets.py).
METRIC_RECONCILE_FROM_PARTS = METRIC_RECONCILE_FINAL.replace(
    PARTIALS_MARK,
    "unnest(%(requests)s::bigint[], %(samples)s::bigint[], %(raw_hash)s::numeric[], %(timed)s::bigint[], "
    "%(latency_sum)s::numeric[], %(err)s::numeric[]) AS p(requests, samples, raw_hash, timed, latency_sum, err)",
)

# The step's one read: `p` is the day grouped by reqCount, with the sums both computations need; `t` is the
# write's formula over them and `g`/`r` (METRIC_INDEPENDENT) the independent one. What they share is this
# one scan of the day and its plain per-reqCount counts and sums (samples, timed, latency_sum, err), so a
# wrong column in `p` would pass both: that part is held to references outside SQL instead, the plain-Python
# reference (test_rollups.py), the statements before this change (test_rollup_instances_match_frozen_sql.py,
# test_verified_retention.py's generated comparison) and retention's fingerprint, a statement of its own.
# The formulas are written apart where there are two: the write's latency is the sum of latency times weight
# over the sum of weights (exact integer sums, as when it summed per sample), the independent one a weighted
# mean of the groups' plain means; the write's requests are the sum of the column, the independent ones the
# group values times their samples. Errors are a plain sum of the column, shared (a second sum of the same
# column, once written with CASE, was the same formula and cost ~1 ms a day). Grouping costs the read
# little more than the write's sums alone did (side measurements on the bench's data, 166,667 samples a
# day, 2 cores: 27-29 ms against 25-28 ms, and 8-10 ms for the day's count(*)); bench/results.md times
# the read and the whole step.
METRIC_DAY_READ = (
    """
WITH p AS (
    SELECT {partial_sums},
           sum("reqCount") AS req_sum,
           -- NaN and +-Infinity are kept out of the fallback mean (NaN orders above every number) and counted
           count(*) FILTER (WHERE NOT ("errorRatePct" < 'Infinity' AND "errorRatePct" > '-Infinity'))
               AS non_finite
    FROM system_metric_samples
    WHERE collected_at >= %(day_start)s AND collected_at < %(day_end)s
    GROUP BY 1
),
t AS (
    -- the write: each latency times its sample's weight w = greatest(reqCount, 1) (a group's samples share
    -- one weight), summed exactly as numeric, over the sum of the weights of the samples with a latency
    SELECT coalesce(sum(samples), 0)::bigint AS samples, coalesce(sum(raw_hash), 0) AS raw_hash,
           sum(latency_sum::numeric * greatest(requests, 1)) FILTER (WHERE timed > 0) AS latency_weighted,
           sum(timed::numeric * greatest(requests, 1)) FILTER (WHERE timed > 0) AS latency_weight,
           coalesce(sum(req_sum), 0)::bigint AS req, coalesce(sum(err), 0)::bigint AS err,
           coalesce(sum(non_finite), 0)::bigint AS non_finite
    FROM p
),{independent}
SELECT t.samples AS raw_rows, t.raw_hash,
       round(t.latency_weighted / t.latency_weight)::int AS latency,
       CASE WHEN t.req > 0 THEN round(100.0 * t.err / t.req, 2)::float8 ELSE ({plain_rate}) END AS error_rate,
       t.req,  -- bigint sums: written as they are, so a day past 2^31 fails on an int column (the step says so)
       t.err,
       t.non_finite,
       -- the independent recomputation, compared by the step with the row it wrote
       r.latency_mean AS independent_latency,
       {independent_rate} AS independent_error_rate,
       r.req AS independent_req,
       r.err AS independent_err
FROM t, r
"""
    .replace(PARTIAL_SUMS_MARK, METRIC_PARTIAL_SUMS)
    .replace("{independent}", METRIC_INDEPENDENT.replace(PARTIALS_MARK, "p"))
    .replace("{independent_rate}", METRIC_INDEPENDENT_ERROR_RATE)
    .replace(PLAIN_RATE_MARK, METRIC_PLAIN_ERROR_RATE.strip())
)
METRIC_DAY_WRITE = """
INSERT INTO system_metric_daily AS d (day, "avgLatencyMs", "avgErrorRatePct", "reqCount", "errCount", created_at)
VALUES (%(day_start)s, %(latency)s, %(error_rate)s, %(req)s, %(err)s, %(now)s)
ON CONFLICT (day) DO UPDATE SET
    "avgLatencyMs" = EXCLUDED."avgLatencyMs",
    "avgErrorRatePct" = EXCLUDED."avgErrorRatePct",
    "reqCount" = EXCLUDED."reqCount",
    "errCount" = EXCLUDED."errCount"
WHERE (d."avgLatencyMs", d."avgErrorRatePct", d."reqCount", d."errCount")
      IS DISTINCT FROM
      (EXCLUDED."avgLatencyMs", EXCLUDED."avgErrorRatePct", EXCLUDED."reqCount", EXCLUDED."errCount")
RETURNING (xmax = 0) AS inserted
"""
# The hash of the day's aggregate row over every column the reconciliation compares: the ledger records it
# (sealed with the fingerprint, ledger.verification_seal) when the step verified the row (METRIC_DAY_READ),
# and retention compares it with the row's hash now. Each column's NULL flag is hashed too: the record hash
# hashes a NULL as 0, and so does a float8 0.0 (found by review), so without the flags a verified error rate
# of 0.0 set to NULL afterwards would keep the row's hash. (-0.0 and 0.0 hash alike, and compare equal.)
METRIC_ROW_HASH = (
    'hash_record_extended(row("avgLatencyMs", "avgErrorRatePct", "reqCount", "errCount", "avgLatencyMs" IS NULL, '
    '"avgErrorRatePct" IS NULL, "reqCount" IS NULL, "errCount" IS NULL), 1)'
)
METRIC_AGGREGATE_HASH = f"SELECT {METRIC_ROW_HASH} FROM system_metric_daily WHERE day = %(day_start)s"  # noqa: S608
METRIC_DAY_EXISTS = "SELECT 1 FROM system_metric_daily WHERE day = %(day_start)s"
METRIC_DAY_DELETE = "DELETE FROM system_metric_daily WHERE day = %(day_start)s"
# For a day with an aggregate but no ledger entry only (written before the ledger existed): are its raw
# rows fewer than the aggregate counts (pruned by an earlier version, late rows since)? Then it is kept.
METRIC_RAW_BELOW_AGGREGATE = """
SELECT coalesce(r.req < d."reqCount", false) OR coalesce(r.err < d."errCount", false)
FROM (
    SELECT coalesce(sum("reqCount"), 0) AS req, coalesce(sum("errCount"), 0) AS err
    FROM system_metric_samples
    WHERE collected_at >= %(day_start)s AND collected_at < %(day_end)s
) AS r
LEFT JOIN system_metric_daily AS d ON d.day = %(day_start)s
"""
# Samples without a timestamp belong to no day: never aggregated; counted for the WARN check (the
# collected_at index answers IS NULL).
SAMPLES_WITHOUT_TIMESTAMP = "SELECT count(*) FROM system_metric_samples WHERE collected_at IS NULL"

# -- client_daily_usage -----------------------------------------------------------------------------------
#
# Categories are matched on lower(event_type) against four text[] parameters (lower-cased by the caller),
# so the mapping is configuration, not code. active_users = distinct non-null user_id over ALL the
# client/module/day's events (categorized or not).
#
# count(DISTINCT user_id) sorts every group, and a per-(client, module, user) pre-aggregate carrying the
# four category counts through ~235k groups spills its hash table (both measured ~10-14x a scan of the
# day). Instead `counts` aggregates the categories over only the (client, module) groups, and `users`
# hashes bare (client, module, user) triples: two index-range reads of the day, ~1.3x faster in all.
#
# Written as "replace the day": rows for (client, module) pairs that no longer have events are deleted,
# the others inserted or updated only when a number changed (updated_at moves only then, so a re-run
# without changes yields identical rows). This is delete-and-insert of the day with the untouched rows
# skipped. A day with no raw events at all (pruned, or never had any) is left as it is (`EXISTS typed`):
# an aggregate is never deleted for lack of raw data. Events with a NULL module_id cannot enter the primary
# key and are left out (counted in `by_type`).
#
# `typed` is the ONE read of every event of the day, grouped by (client, module, event_type) (`events` as
# int: summed over int, `counts` gets a hash aggregate instead of an external sort, ~10% of the statement at
# 416k events). `per_type` folds it to the day's few distinct event_type values: each is lower-cased and
# given its category ONCE there (matching lower(event_type) per (client, module, type) group instead was
# ~20% of the statement at 416k events), with its events, NULL-module events (metadata) and hash sum.
# `counts` joins the groups to their type's category; the day's fingerprint (raw_rows, raw_hash: the
# ledger's value, the same per-row hash retention's fingerprint sums, added up per group, per type, then
# over the types: an exact numeric sum, so equal) comes from `per_type`. `users` is
# the second read (bare (client, module, user) triples, see above). The statement returns the number and
# the hash (USAGE_AGGREGATE_ROW_HASH) of the aggregate rows it computed; the step compares them with the
# rows read back for the day (USAGE_DAY_READBACK).
USAGE_DAY_REPLACE = _with_aggregate_hash(
    """
WITH typed AS (
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
       (SELECT coalesce(sum({aggregate_row_hash}), 0) FROM fresh) AS rollup_hash,
       (SELECT count(*) FROM written WHERE inserted) AS inserted,
       (SELECT count(*) FROM written WHERE NOT inserted) AS updated,
       (SELECT count(*) FROM removed) AS deleted
""",
    USAGE_AGGREGATE_ROW_HASH,
)

# The day's aggregate rows read back by the primary key (same snapshot, after USAGE_DAY_REPLACE): their
# number and hash (compared with what the write computed) and the day's figures for the per-day report
# (daily_report.USAGE_FIGURE_NAMES).
USAGE_DAY_READBACK = _with_aggregate_hash(
    """
SELECT count(*) AS aggregate_rows,
       coalesce(sum({aggregate_row_hash}), 0) AS aggregate_hash,
       coalesce(sum(view_count), 0)::bigint AS view_count,
       coalesce(sum(create_count), 0)::bigint AS create_count,
       coalesce(sum(edit_count), 0)::bigint AS edit_count,
       coalesce(sum(delete_count), 0)::bigint AS delete_count,
       coalesce(sum(active_users), 0)::bigint AS active_users_summed,
       count(DISTINCT client_id) AS clients,
       count(DISTINCT module_id) AS modules
FROM client_daily_usage
WHERE date = %(day)s
""",
    USAGE_AGGREGATE_ROW_HASH,
)

# What the day's raw events were, per lower-cased type: total and NULL-module events. USAGE_DAY_REPLACE
# returns the same (`by_type`) from its own read of the day; kept for the benchmarks' statement timings.
USAGE_DAY_STATS = """
SELECT lower(event_type) AS event_type,
       count(*) AS events,
       count(*) FILTER (WHERE module_id IS NULL) AS null_module
FROM client_usage_events
WHERE occurred_at >= %(day_start)s AND occurred_at < %(day_end)s
GROUP BY lower(event_type)
"""

# (client, module) pairs of one day whose counts differ between client_daily_usage and the raw events with
# a module_id: the four categories AND active_users (a pair present on one side only counts too). 0 means
# reconciled. Written independently of USAGE_DAY_REPLACE (one pass, count(DISTINCT), a FULL JOIN) so a
# mistake in one shows: retention runs it in the snapshot that deletes the day (retention/assets.py). The
# same read gives the day's fingerprint over ALL its events (NULL module too: `raw_all`; raw_rows and
# raw_hash, `{raw_row_hash}` as in the write), so retention reads a day once before deleting it.
USAGE_DAY_MISMATCHES = """
WITH raw_all AS (
    SELECT client_id, module_id,
           count(*) FILTER (WHERE lower(event_type) = ANY(%(view_types)s::text[])) AS view_count,
           count(*) FILTER (WHERE lower(event_type) = ANY(%(create_types)s::text[])) AS create_count,
           count(*) FILTER (WHERE lower(event_type) = ANY(%(edit_types)s::text[])) AS edit_count,
           count(*) FILTER (WHERE lower(event_type) = ANY(%(delete_types)s::text[])) AS delete_count,
           count(DISTINCT user_id) AS active_users,
           count(*) AS raw_rows,
           sum({raw_row_hash}) AS raw_hash
    FROM client_usage_events
    WHERE occurred_at >= %(day_start)s AND occurred_at < %(day_end)s
    GROUP BY client_id, module_id
),
raw AS (
    SELECT client_id, module_id, view_count, create_count, edit_count, delete_count, active_users
    FROM raw_all
    WHERE module_id IS NOT NULL
),
agg AS (
    SELECT client_id, module_id, view_count, create_count, edit_count, delete_count, active_users
    FROM client_daily_usage
    WHERE date = %(day)s
)
SELECT count(*) AS mismatched_pairs,
       (SELECT count(*) FROM agg) AS aggregate_rows,
       (SELECT count(*) FROM raw) AS raw_pairs,
       -- events no aggregate row can hold (a NULL key): retention keeps them raw (rollups/held_rows.py)
       (SELECT coalesce(sum(raw_rows), 0) FROM raw_all WHERE client_id IS NULL OR module_id IS NULL)
           AS null_key_rows,
       (SELECT coalesce(sum(raw_rows), 0) FROM raw_all) AS raw_rows,
       (SELECT coalesce(sum(raw_hash), 0) FROM raw_all) AS raw_hash
FROM raw FULL JOIN agg USING (client_id, module_id)
WHERE (raw.view_count, raw.create_count, raw.edit_count, raw.delete_count, raw.active_users)
      IS DISTINCT FROM (agg.view_count, agg.create_count, agg.edit_count, agg.delete_count, agg.active_users)
"""
USAGE_DAY_EXISTS = "SELECT 1 FROM client_daily_usage WHERE date = %(day)s LIMIT 1"
USAGE_DAY_DELETE = "DELETE FROM client_daily_usage WHERE date = %(day)s"
# For a day with an aggregate but no ledger entry only (see METRIC_RAW_BELOW_AGGREGATE).
USAGE_RAW_BELOW_AGGREGATE = """
SELECT (
    SELECT count(*) FROM client_usage_events
    WHERE occurred_at >= %(day_start)s AND occurred_at < %(day_end)s AND module_id IS NOT NULL
      AND lower(event_type) = ANY(%(view_types)s::text[] || %(create_types)s::text[] || %(edit_types)s::text[]
                                  || %(delete_types)s::text[])
) < (
    SELECT coalesce(sum(view_count + create_count + edit_count + delete_count), 0)
    FROM client_daily_usage WHERE date = %(day)s
)
"""
# Rows of a window in the aggregates (dagster/row_count of a materialization).
METRIC_WINDOW_ROWS = """
SELECT count(*) FROM system_metric_daily WHERE day >= %(window_start)s AND day < %(window_end)s
"""
USAGE_WINDOW_ROWS = """
SELECT count(*) FROM client_daily_usage WHERE date >= %(first_day)s AND date < %(end_day)s
"""

# One day's aggregate row and its hash (METRIC_ROW_HASH): the step's read-back, and the health check's row.
METRIC_DAY_ROW = f"""
SELECT "avgLatencyMs", "avgErrorRatePct", "reqCount", "errCount", {METRIC_ROW_HASH}
FROM system_metric_daily WHERE day = %(day_start)s
"""  # noqa: S608 - constant text

# Observation of the external raw tables: RollupSpec.observation_sql (rollups/spec.py), per instance.

# -- serialization of writers: see erp_pipelines/dbwork.py (lock first, then the snapshot).
