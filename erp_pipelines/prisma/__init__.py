"""Prisma Migrate on PostgreSQL, without Dagster: read a migrations folder, inspect and diff catalogs,
plan and apply a non-destructive sync, and keep `_prisma_migrations` the way Prisma reads it."""
