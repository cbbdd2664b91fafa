"""Fast tests of pure functions: no database, no Dagster instance."""
