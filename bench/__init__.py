"""Benchmarks of the rollups and retention on synthetic data: `python -m bench.run [--small]`."""
