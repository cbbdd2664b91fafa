"""Daily rollups of the ERP's raw usage events and health samples (issue 6)."""
