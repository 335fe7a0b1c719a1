"""What every claim check shares: the tiny exact problem, the result record and the registry builder.

A claim check ``check_eN(problem, ...)`` computes one quantity two ways — an exact reference and the
route the paper describes — and returns a :class:`CheckResult`. The claims and the equations they
involve are listed in docs/equations.md and derived in docs/derivations.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from maxent_il.features import StateActionFeatures, StateKind
from maxent_il.space import SequenceSpace


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one claim check.

    Attributes:
        name: claim id, e.g. ``"E7"``.
        claim: one line saying what is checked.
        equation: the paper equations involved.
        value: the quantity by the paper's route (a scalar summary, e.g. a norm).
        reference: the exact reference for ``value``.
        error: the discrepancy that is compared with ``tol``.
        tol: the tolerance.
        passed: ``error <= tol``.
    """

    name: str
    claim: str
    equation: str
    value: float
    reference: float
    error: float
    tol: float

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.error) and self.error <= self.tol)


@dataclass(frozen=True)
class TinyProblem:
    """A tiny exact problem: features, a data distribution over all V^T sequences, a θ to probe.

    Attributes:
        features: state-action features over the space.
        data_probs: p_data over all V^T sequences (index order), full support (interior case).
        theta: a generic cost vector (used where a claim needs a θ that is not optimal).
        seed: the seed it was built from.
    """

    features: StateActionFeatures
    data_probs: np.ndarray
    theta: np.ndarray
    seed: int

    @property
    def space(self) -> SequenceSpace:
        return self.features.space

    @property
    def data_moments(self) -> np.ndarray:
        """E_data f of the constraint (6), shape (d,)."""
        return self.features.weighted_counts(self.space.all_sequences(), self.data_probs)


#: A claim check: a tiny problem in, a result out (options keyword-only, with defaults).
Check = Callable[[TinyProblem], CheckResult]

_CHECK_NAME = re.compile(r"check_e(\d+)")


def make_tiny_problem(
    n_items: int = 3, horizon: int = 3, *, state: StateKind = "last", seed: int = 0, scale: float = 1.0
) -> TinyProblem:
    """A seeded tiny problem whose data distribution is Dirichlet(1) over the V^T sequences."""
    rng = np.random.default_rng(seed)
    space = SequenceSpace(n_items, horizon)
    features = StateActionFeatures(space, state)
    data = rng.dirichlet(np.ones(space.size))
    data = np.maximum(data, 1e-4)
    theta = rng.normal(scale=scale, size=features.dim)
    return TinyProblem(features, data / data.sum(), theta, seed)


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """‖a − b‖_∞: the discrepancy most checks compare with their tolerance."""
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


def claim_registry(*checks: Check) -> dict[str, Check]:
    """Name → check for functions named ``check_eN``, keyed ``"EN"`` and ordered by N.

    Extending the registry is one more argument: ``claim_registry(*IRL_CHECKS, *GAN_CHECKS, *more)``.
    """
    numbered: dict[int, Check] = {}
    for check in checks:
        match = _CHECK_NAME.fullmatch(getattr(check, "__name__", ""))
        if match is None:
            raise ValueError(f"claim checks must be functions named check_eN, got {check!r}")
        n = int(match[1])
        if n in numbered:
            raise ValueError(f"claim E{n} is registered twice; each check_eN appears once")
        numbered[n] = check
    return {f"E{n}": numbered[n] for n in sorted(numbered)}
