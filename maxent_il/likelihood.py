"""Exact log-likelihood of demonstrations under P_θ and its gradient (eq. 15).

    LL(θ)   = E_demo log P_θ(S) − (λ/2)‖θ‖²  = −θ·E_demo f − log Z(θ) − (λ/2)‖θ‖²,
    ∇LL(θ)  = −E_demo f + E_{P_θ} f − λθ                                        (eq. 15)

The model term E_{P_θ} f comes from enumeration (any features) or from the soft Bellman backup
(decomposable features); ``method`` picks the route, and the two are tested against each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from maxent_il.checks import choice, finite_vector, non_negative_float
from maxent_il.dynamic import soft_bellman
from maxent_il.features import FeatureMap

ExactMethod = Literal["auto", "enumerate", "dp"]
EXACT_METHODS: tuple[str, ...] = ("auto", "enumerate", "dp")


@dataclass(frozen=True)
class Demonstrations:
    """Validated expert sequences with optional non-negative weights.

    Attributes:
        sequences: int64 array (N, T).
        weights: float64 array (N,), summing to 1 (uniform when none are given).
    """

    sequences: np.ndarray
    weights: np.ndarray

    @classmethod
    def from_any(cls, features: FeatureMap, sequences: Any, weights: Any = None) -> Demonstrations:
        """Validate ``sequences`` against the feature map's space and normalize ``weights``."""
        seqs = features.space.validate(sequences, name="demos")
        if weights is None:
            w = np.full(seqs.shape[0], 1.0 / seqs.shape[0])
        else:
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != (seqs.shape[0],):
                raise ValueError(f"weights must have shape ({seqs.shape[0]},) like the demos, got {w.shape}")
            bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
            if bad.size:
                raise ValueError(
                    f"weights[{bad[0]}] = {float(w[bad[0]])!r}; weights must be finite and non-negative"
                )
            if w.sum() <= 0:
                raise ValueError("weights are all zero; give at least one positive weight")
            w = w / w.sum()
        return cls(seqs, w)


def demo_moments(features: FeatureMap, demos: Any, weights: Any = None) -> np.ndarray:
    """E_demo f, the empirical feature expectation on the right of the constraint (6): shape (d,)."""
    if isinstance(demos, Demonstrations):
        d = demos
    else:
        d = Demonstrations.from_any(features, demos, weights)
    return features.weighted_counts(d.sequences, d.weights)


def model_moments(
    features: FeatureMap, theta: Any, *, method: ExactMethod = "auto"
) -> tuple[float, np.ndarray]:
    """(log Z, E_{P_θ} f) of eq. (8) by dynamic programming (decomposable features) or enumeration."""
    from maxent_il.gibbs import gibbs_stats

    choice(method, "method", EXACT_METHODS)
    if method == "dp" or (method == "auto" and features.is_decomposable):
        res = soft_bellman(features, theta)
        return res.log_partition, res.expected_features
    stats = gibbs_stats(features, theta)
    return stats.log_partition, stats.expected_features


def model_summary(
    features: FeatureMap, theta: Any, *, method: ExactMethod = "auto"
) -> tuple[float, np.ndarray, float]:
    """(log Z, E_{P_θ} f, H(P_θ)) of eq. (8); H from the normalized log-probabilities (exact at large θ)."""
    from maxent_il.gibbs import gibbs_stats

    choice(method, "method", EXACT_METHODS)
    if method == "dp" or (method == "auto" and features.is_decomposable):
        res = soft_bellman(features, theta)
        return res.log_partition, res.expected_features, res.entropy
    stats = gibbs_stats(features, theta)
    return stats.log_partition, stats.expected_features, stats.entropy


def log_likelihood_and_gradient(
    features: FeatureMap,
    theta: Any,
    target_moments: np.ndarray,
    *,
    l2: float = 0.0,
    method: ExactMethod = "auto",
) -> tuple[float, np.ndarray]:
    """LL(θ) and ∇LL(θ) (eq. 15) given the demo moments E_demo f.

    Sign: LL is to be *maximized*; ∇LL = −E_demo f + E_P f − λθ points uphill.
    """
    theta = features.check_theta(theta)
    target_moments = finite_vector(target_moments, "target_moments", dim=features.dim)
    l2 = non_negative_float(l2, "l2")
    log_z, expected = model_moments(features, theta, method=method)
    ll = -float(theta @ target_moments) - log_z - 0.5 * l2 * float(theta @ theta)
    grad = -target_moments + expected - l2 * theta
    return ll, grad


def log_likelihood(
    features: FeatureMap,
    theta: Any,
    demos: Any,
    *,
    weights: Any = None,
    l2: float = 0.0,
    method: ExactMethod = "auto",
) -> float:
    """Mean log P_θ of the demonstrations (eq. 8) minus (λ/2)‖θ‖²."""
    return log_likelihood_and_gradient(
        features, theta, demo_moments(features, demos, weights), l2=l2, method=method
    )[0]


def log_likelihood_gradient(
    features: FeatureMap,
    theta: Any,
    demos: Any,
    *,
    weights: Any = None,
    l2: float = 0.0,
    method: ExactMethod = "auto",
) -> np.ndarray:
    """Eq. (15): ∇LL = −E_demo ∇c + E_P ∇c (with ∇_θ c = f), minus λθ."""
    return log_likelihood_and_gradient(
        features, theta, demo_moments(features, demos, weights), l2=l2, method=method
    )[1]
