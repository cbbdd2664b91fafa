"""The registry of measurements: what the bench runs at the largest size and the order of the report.

Adding a measurement = a module `bench/measure_<what>.py` (or sync_bench.py, trigger_overhead.py...) with a
`Measurement(key, run, rows, details)` and one line here. `run(bench)` gets the loaded database of the
largest size (bench.url, bench.day, bench.first_day..bench.end_day) and returns what is stored in
results.json under `key`; `rows(results)` / `details(results)` give its lines of results.md. Each one
runs in its own section: a failure is a note in results.md and the other numbers are kept.
"""

from __future__ import annotations

from bench import measure_dagster, measure_pandas, measure_retention, measure_rollups
from bench.common import Measurement

# In order: run order at the largest size (entries whose run is None are run elsewhere) and report order.
MEASUREMENTS: tuple[Measurement, ...] = (
    measure_rollups.PLANS,
    measure_rollups.BACKFILL,
    measure_pandas.PANDAS,
    measure_dagster.DAGSTER,
    measure_retention.RETENTION,
    measure_retention.PARTITIONS,
)
