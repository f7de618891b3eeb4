"""Shared test configuration: one hypothesis profile (no deadline: the first call of a numba kernel
compiles or loads it from the cache) and a moderate number of examples so the suite stays fast."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "hashlearn",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("hashlearn")


@pytest.fixture
def rng():
    """A seeded numpy Generator, fresh for every test."""
    return np.random.default_rng(12345)
