"""The demo ERP: our own Prisma migrations folder modelling the seed's ERP, its drifted state and data."""
