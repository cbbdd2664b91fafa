"""How many examples a generated (hypothesis) test runs: bounded in CI, longer in a nightly profile.

Why one place: generated tests find bugs in proportion to the examples they run, and a shared 2-core CI box
has a 25-minute budget for the whole suite. Each generated test names its CI count and its nightly count
here; `ERP_HYPOTHESIS_PROFILE=nightly make test` (documented in README.md) runs the longer profile.
Examples found are kept as named regression tests beside the generator, never only in hypothesis' database
(`database=None`: nothing is written into the tree).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE_VARIABLE = "ERP_HYPOTHESIS_PROFILE"


def nightly() -> bool:
    """True when the longer profile was asked for."""
    return os.environ.get(PROFILE_VARIABLE, "ci").strip().lower() == "nightly"


def bounded(ci: int, nightly_examples: int | None = None) -> settings:
    """Settings for a generated test: `ci` examples in CI, `nightly_examples` (default 10x) in the nightly
    profile; no per-example deadline (a shared box), no example database, fixtures shared across examples."""
    n = (nightly_examples if nightly_examples is not None else 10 * ci) if nightly() else ci
    return settings(max_examples=n, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
