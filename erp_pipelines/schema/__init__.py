"""The `schema` group: non-destructive schema sync, Prisma migration history, the health-config row."""
