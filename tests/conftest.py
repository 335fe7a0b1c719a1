"""Shared test settings: tolerance constants by kind, hypothesis profiles, a seeded RNG fixture.

Profiles: ``ci`` (default; derandomized, no deadline) and ``dev`` (more examples). Choose with
``HYPOTHESIS_PROFILE=dev pytest``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

#: exact float64 route vs another exact float64 route (enumeration vs DP, closed forms).
EXACT_TOL = 1e-10
#: autograd / finite differences vs closed-form gradients in float64.
AUTOGRAD_TOL = 1e-8
#: central finite differences of an exact float64 function (step 1e-5 → error ~1e-10 · scale).
FINITE_DIFF_TOL = 1e-6
#: float32 training paths.
FLOAT32_TOL = 1e-4
#: iterative solvers (L-BFGS to gtol 1e-9, Newton on the primal) vs exact quantities.
SOLVER_TOL = 1e-6
#: Monte-Carlo: |mean − exact| must lie within this many standard errors.
MC_Z_SCORE = 5.0

#: The repository root (scripts under examples/ and benchmarks/ are loaded from here).
ROOT = Path(__file__).resolve().parents[1]


def load_script(relative: str):
    """Import a script file as a module (scripts are not part of the installed packages)."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "dev", deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng() -> np.random.Generator:
    """A freshly seeded numpy generator (seed 12345) for each test."""
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True, scope="module")
def _single_torch_thread():
    """Tiny tensors run far faster on one thread (thread hand-off dominates on 2 cores); set again
    for every test module, so a test that changes torch's thread count does not leak it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
