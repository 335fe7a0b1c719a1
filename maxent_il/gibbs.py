"""The MaxEnt (Gibbs) distribution of eq. (8), P_θ(S) = exp(−θ·f(S)) / Z, by exact enumeration.

Everything here sums over all V^T sequences in chunks (see :class:`SequenceSpace`), in float64,
with a streaming log-sum-exp so that large costs neither overflow nor underflow. For decomposable
features the same quantities come much faster from :mod:`maxent_il.dynamic`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from maxent_il.features import FeatureMap
from maxent_il.space import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_SEQUENCES


@dataclass(frozen=True)
class GibbsStats:
    """Exact summary of P_θ.

    Attributes:
        log_partition: log Z = log Σ_S exp(−θ·f(S)).
        expected_features: E_P f, shape (d,).
        expected_cost: E_P c = θ·E_P f.
        entropy: H(P) = log Z + E_P c (nats).
    """

    log_partition: float
    expected_features: np.ndarray
    expected_cost: float
    entropy: float


def gibbs_stats(
    features: FeatureMap,
    theta: Any,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_sequences: int = DEFAULT_MAX_SEQUENCES,
) -> GibbsStats:
    """log Z, E_P f, E_P c and H(P) of eq. (8) in one streaming pass over the space.

    The pass keeps a running maximum m of −c(S) and rescales its partial sums Σ e^{−c−m} and
    Σ e^{−c−m} f when m grows, so the result is exact for costs of any magnitude.
    """
    theta = features.check_theta(theta)
    running_max = -np.inf
    mass = 0.0  # Σ exp(−c − running_max)
    moments = np.zeros(features.dim)  # Σ exp(−c − running_max) f(S), shape (d,)
    for _, seqs in features.space.iter_chunks(chunk_size=chunk_size, max_sequences=max_sequences):
        neg_cost = -features.costs(theta, seqs)  # (n,)
        chunk_max = float(neg_cost.max())
        if chunk_max > running_max:
            scale = np.exp(running_max - chunk_max)
            mass *= scale
            moments *= scale
            running_max = chunk_max
        w = np.exp(neg_cost - running_max)  # (n,)
        mass += float(w.sum())
        moments += features.weighted_counts(seqs, w)
    log_z = running_max + np.log(mass)
    expected = moments / mass
    expected_cost = float(theta @ expected)
    return GibbsStats(float(log_z), expected, expected_cost, float(log_z + expected_cost))


def log_partition(features: FeatureMap, theta: Any, **kwargs: Any) -> float:
    """log Z(θ) of eq. (8), exact by enumeration."""
    return gibbs_stats(features, theta, **kwargs).log_partition


def all_log_probs(
    features: FeatureMap, theta: Any, *, max_sequences: int = DEFAULT_MAX_SEQUENCES
) -> np.ndarray:
    """log P_θ(S) for every sequence in index order, shape (V^T,) (eq. 8)."""
    theta = features.check_theta(theta)
    seqs = features.space.all_sequences(max_sequences=max_sequences)
    neg_cost = -features.costs(theta, seqs)
    m = neg_cost.max()
    return neg_cost - (m + np.log(np.exp(neg_cost - m).sum()))


def check_distribution(q: Any, size: int, *, name: str = "q") -> np.ndarray:
    """Validate a probability vector over the whole space (length V^T, ≥ 0, sums to 1)."""
    arr = np.asarray(q, dtype=np.float64)
    if arr.shape != (size,):
        raise ValueError(
            f"{name} must be a probability vector of shape ({size},) over all V^T sequences, got {arr.shape}"
        )
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must hold finite non-negative probabilities")
    total = arr.sum()
    if abs(total - 1.0) > 1e-9:
        raise ValueError(f"{name} sums to {total!r}, not 1")
    return arr


def entropy(p: Any) -> float:
    """Shannon entropy H(p) = −Σ p log p in nats, with 0 log 0 = 0."""
    p = np.asarray(p, dtype=np.float64)
    nz = p > 0
    return float(-(p[nz] * np.log(p[nz])).sum())


def kl_divergence(q: Any, features: FeatureMap, theta: Any, **kwargs: Any) -> float:
    """KL(q‖P_θ) = E_q c − H(q) + log Z (the identity under eq. 18), for q over all V^T sequences."""
    q = check_distribution(q, features.space.size)
    log_p = all_log_probs(features, theta, **kwargs)
    nz = q > 0
    return float((q[nz] * (np.log(q[nz]) - log_p[nz])).sum())


class GibbsModel:
    """P_θ(S) = exp(−θ·f(S))/Z over a feature map's space (eq. 8), computed exactly.

    The one enumeration pass (log Z and E_P f) is cached on first use.
    """

    def __init__(
        self,
        features: FeatureMap,
        theta: Any,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_sequences: int = DEFAULT_MAX_SEQUENCES,
    ) -> None:
        self.features = features
        self.theta = features.check_theta(theta)
        self.chunk_size = chunk_size
        self.max_sequences = max_sequences

    @cached_property
    def stats(self) -> GibbsStats:
        """log Z, E_P f, E_P c and H(P) (one enumeration pass)."""
        return gibbs_stats(
            self.features, self.theta, chunk_size=self.chunk_size, max_sequences=self.max_sequences
        )

    @property
    def log_partition(self) -> float:
        return self.stats.log_partition

    @property
    def entropy(self) -> float:
        return self.stats.entropy

    @property
    def expected_features(self) -> np.ndarray:
        return self.stats.expected_features

    def costs(self, sequences: Any) -> np.ndarray:
        """c(S) = θ·f(S), shape (N,)."""
        return self.features.costs(self.theta, sequences)

    def log_prob(self, sequences: Any) -> np.ndarray:
        """log P_θ(S) = −c(S) − log Z, shape (N,)."""
        return -self.costs(sequences) - self.log_partition

    def all_log_probs(self) -> np.ndarray:
        """log P_θ over the whole space in index order, shape (V^T,)."""
        return all_log_probs(self.features, self.theta, max_sequences=self.max_sequences)

    def probabilities(self) -> np.ndarray:
        """P_θ over the whole space in index order, shape (V^T,)."""
        return np.exp(self.all_log_probs())

    def kl_from(self, q: Any) -> float:
        """KL(q‖P_θ) for q given as a probability vector over all V^T sequences (eq. 18)."""
        return kl_divergence(q, self.features, self.theta, max_sequences=self.max_sequences)

    def sample(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        """n exact independent draws from P_θ: int64 array (n, T)."""
        if n < 0:
            raise ValueError(f"n must be non-negative, got {n}")
        p = self.probabilities()
        idx = rng.choice(p.size, size=n, p=p / p.sum())
        return self.features.space.decode(idx)
