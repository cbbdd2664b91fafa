"""Safe retention of the ERP's raw and aggregated health/usage tables (issue 6)."""
