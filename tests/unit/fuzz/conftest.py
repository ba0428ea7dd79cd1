"""Hypothesis settings for the parser properties: bounded and deterministic for CI.

``derandomize`` makes every run draw the same examples, so a failure in CI is
a failure on every machine, and no example database is written. Set
``HYPOTHESIS_PROFILE=gcx-deep`` to search much further by hand; a bug found
that way becomes a fixed regression example in the test it broke.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "gcx-ci",
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "gcx-deep",
    max_examples=5000,
    deadline=None,
    derandomize=False,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "gcx-ci"))
