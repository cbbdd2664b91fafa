"""Test helpers shared across the suite (fixtures live in conftests; helpers live here)."""
