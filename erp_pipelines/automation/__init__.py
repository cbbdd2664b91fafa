"""Jobs, schedules and sensors that keep the rollups and retention running without anyone asking."""
