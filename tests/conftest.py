from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

torch.set_num_threads(2)

# Timing on a shared 2-core CI machine varies: no per-example deadline, derandomised for reproducible CI.
settings.register_profile("soundmask", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("soundmask")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
