"""The MaxEnt (Gibbs) distribution of eq. (8), P_θ(S) = exp(−θ·f(S)) / Z, by exact enumeration.

Everything here sums over all V^T sequences in chunks (see :class:`SequenceSpace`), in float64,
with a streaming log-sum-exp so that large costs neither overflow nor underflow. For decomposable
features the same quantities come much faster from :mod:`maxent_il.dynamic`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial
from typing import Any

import numpy as np
from scipy.special import logsumexp

from maxent_il.checks import MAX_ABS_COST, non_negative_int, probability_vector
from maxent_il.divergences import entropy as entropy  # re-exported: maxent_il.entropy
from maxent_il.divergences import kl_from_log_probs, log_probabilities
from maxent_il.features import CustomFeatures, FeatureMap, StateActionFeatures, check_costs
from maxent_il.space import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_SEQUENCES

#: The running sums of the streaming log-sum-exp are rescaled only when a chunk's largest −c(S)
#: exceeds their reference by more than this; terms are then at most e^RESCALE_SLACK, far from
#: float64 overflow, and rescaling (O(d)) stays rare even when the costs fall chunk after chunk.
RESCALE_SLACK = 256.0
#: Chunk moments come from one dense ``bincount`` while d ≤ this × (number of indices in the
#: chunk); beyond that (e.g. 'history' features, d ≈ V^T) one bincount per step over the range of
#: indices the chunk touches, so a chunk's cost does not grow with d.
DENSE_MOMENTS_FACTOR = 4


@dataclass(frozen=True)
class GibbsStats:
    """Exact summary of P_θ.

    Attributes:
        log_partition: log Z = log Σ_S exp(−θ·f(S)).
        expected_features: E_P f, shape (d,).
        expected_cost: E_P c = θ·E_P f.
        entropy: H(P) = −Σ_S P(S) log P(S) (nats), summed from the normalized log-probabilities
            log P = −c − log Z (equal to log Z + E_P c, without that difference's cancellation).
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

    Each chunk yields its own maximum m_c of −c(S), its mass Σ e^{−c−m_c} and its moments
    Σ e^{−c−m_c} f. They are merged in index order into running sums kept relative to a reference
    m ≤ max −c seen so far (a streaming log-sum-exp): when a chunk's m_c exceeds m by more than
    ``RESCALE_SLACK`` the sums are rescaled to m_c, so no term overflows or underflows and the
    result is exact for costs of any magnitude.

    log Z and H(P) come from scalars kept relative to the exact running maximum m* = −min c
    (:class:`_TopSums`): R = Σ_{S ≠ argmin c} e^{−c−m*} and A = Σ_S e^{−c−m*} (c + m*) ≥ 0, so
    log Z = m* + log1p(R) and H = −Σ P log P = A / (1 + R) + log1p(R) are sums of non-negative
    terms, accurate to rounding even when P is nearly deterministic (large θ). Costs beyond
    ``MAX_ABS_COST`` are refused with a ``ValueError`` naming θ, never turned into NaN or ±inf.
    """
    theta = features.check_theta(theta)
    kernel = _chunk_kernel(features, theta)
    reference = -np.inf  # m: the moments are relative to e^m
    mass = 0.0  # Σ exp(−c − m)
    moments = np.zeros(features.dim)  # Σ exp(−c − m) f(S), shape (d,)
    top = _TopSums()
    for _, seqs in features.space.iter_chunks(chunk_size=chunk_size, max_sequences=max_sequences):
        chunk_max, chunk_rest, chunk_spread, segments = kernel(seqs)
        top.merge(chunk_max, chunk_rest, chunk_spread)
        if chunk_max > reference + RESCALE_SLACK:  # (always true for the first chunk)
            shrink = np.exp(reference - chunk_max)
            mass *= shrink
            moments *= shrink
            reference = chunk_max
        scale = np.exp(chunk_max - reference)  # in [0, e^RESCALE_SLACK]
        mass += scale * (1.0 + chunk_rest)
        for start, values in segments:
            moments[start : start + values.size] += scale * values
    expected = moments / mass
    expected_cost = float(theta @ expected)
    return GibbsStats(top.log_partition(), expected, expected_cost, top.entropy())


class _TopSums:
    """Running (m*, R, A) of :func:`gibbs_stats`: m* = max −c, R = Σ_{S ≠ argmax} e^{−c−m*} and
    A = Σ_S e^{−c−m*}(c + m*); every term is non-negative, so log Z and H keep full accuracy."""

    def __init__(self) -> None:
        self.top = -np.inf
        self.rest = 0.0
        self.spread = 0.0

    def merge(self, chunk_max: float, chunk_rest: float, chunk_spread: float) -> None:
        """Add a chunk given relative to its own maximum m_c (R_c and A_c as above)."""
        if self.top == -np.inf:
            self.top, self.rest, self.spread = chunk_max, chunk_rest, chunk_spread
            return
        gap = abs(chunk_max - self.top)  # ≥ 0 and finite (|c| ≤ MAX_ABS_COST)
        shrink = float(np.exp(-gap))
        if chunk_max > self.top:  # the old sums move to the new maximum; the old top joins R
            self.spread = shrink * self.spread + (shrink * gap) * (1.0 + self.rest) + chunk_spread
            self.rest = shrink * (1.0 + self.rest) + chunk_rest
            self.top = chunk_max
        else:  # the chunk's terms, moved to the current maximum
            self.spread += shrink * chunk_spread + (shrink * gap) * (1.0 + chunk_rest)
            self.rest += shrink * (1.0 + chunk_rest)

    def log_partition(self) -> float:
        """log Z = m* + log1p(R)."""
        return float(self.top + np.log1p(self.rest))

    def entropy(self) -> float:
        """H = A / (1 + R) + log1p(R)."""
        return float(self.spread / (1.0 + self.rest) + np.log1p(self.rest))


#: A chunk's (m_c, R_c, A_c, moments): m_c = max −c, R_c = Σ_{S ≠ argmax} e^{−c−m_c},
#: A_c = Σ e^{−c−m_c}(c + m_c), and the moments Σ e^{−c−m_c} f given as segments
#: ``(start, values)`` of the d-vector (one segment for small d; one per step for large d).
ChunkStats = tuple[float, float, float, list[tuple[int, np.ndarray]]]


def _chunk_kernel(features: FeatureMap, theta: np.ndarray) -> Callable[[np.ndarray], ChunkStats]:
    """The per-chunk kernel ``seqs ↦ (m_c, R_c, A_c, Σ e^{−c−m_c} f)``, m_c = max −c on the chunk.

    Built-in state-action features evaluate the feature indices once per chunk (one feature
    fires per step, so c(S) = Σ_t θ[idx_t] and Σ w f is a ``np.bincount``); custom maps
    evaluate f once and reuse it for both the costs and the moments; any other map goes through
    its ``costs`` and ``weighted_counts`` methods.
    """
    if _uses_builtin_kernels(features, StateActionFeatures):
        return partial(_state_action_chunk, features, theta)
    if _uses_builtin_kernels(features, CustomFeatures):
        return partial(_custom_chunk, features, theta)
    return partial(_generic_chunk, features, theta)


def _uses_builtin_kernels(features: FeatureMap, cls: type) -> bool:
    """True when ``features`` is a ``cls`` whose costs and weighted counts are cls's own."""
    kind = type(features)
    return (
        isinstance(features, cls)
        and kind.costs is cls.costs  # type: ignore[attr-defined]
        and kind.weighted_counts is cls.weighted_counts  # type: ignore[attr-defined]
    )


def _weights(neg_cost: np.ndarray) -> tuple[float, float, float, np.ndarray]:
    """(m_c, R_c, A_c, w) of a chunk's −c, shape (n,): w = e^{−c−m_c} (n,), with one entry exactly 1."""
    k = int(neg_cost.argmax())
    chunk_max = float(neg_cost[k])
    shifted = neg_cost - chunk_max  # ≤ 0: −(c + m_c)
    w = np.exp(shifted)
    rest = float(w[:k].sum() + w[k + 1 :].sum())  # without the maximum's 1: accurate when tiny
    spread = -float((w * shifted).sum())
    return chunk_max, rest, spread, w


def _state_action_chunk(features: StateActionFeatures, theta: np.ndarray, seqs: np.ndarray) -> ChunkStats:
    idx = features.step_indices(seqs)  # (n, T): the feature that fires at each step
    n_steps = idx.shape[1]
    # c(S) = Σ_t θ[idx_t], summed step by step (no BLAS call: BLAS threads would oversubscribe).
    step_costs = theta.take(idx)  # (n, T)
    neg_cost = -step_costs[:, 0]
    for col in range(1, n_steps):  # loop over T steps, vectorized over the chunk
        neg_cost -= step_costs[:, col]
    chunk_max, rest, spread, w = _weights(neg_cost)
    if features.dim <= DENSE_MOMENTS_FACTOR * idx.size:  # one bincount over all n·T indices
        moments = np.bincount(idx.ravel(), weights=np.repeat(w, n_steps), minlength=features.dim)
        segments = [(0, moments)]
    else:  # d ≫ n·T ('history'): per step, a bincount over the index range the chunk touches
        segments = []
        for col in range(n_steps):  # loop over T steps, vectorized over the chunk
            column = idx[:, col]
            lo = int(column.min())
            segments.append((lo, np.bincount(column - lo, weights=w)))
    return chunk_max, rest, spread, segments


def _custom_chunk(features: CustomFeatures, theta: np.ndarray, seqs: np.ndarray) -> ChunkStats:
    counts = features.counts(seqs)  # (n, d), evaluated once
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported by check_costs
        costs = counts @ theta
    chunk_max, rest, spread, w = _weights(-check_costs(costs, features, theta, seqs))
    return chunk_max, rest, spread, [(0, w @ counts)]


def _generic_chunk(features: FeatureMap, theta: np.ndarray, seqs: np.ndarray) -> ChunkStats:
    chunk_max, rest, spread, w = _weights(-check_costs(features.costs(theta, seqs), features, theta, seqs))
    return chunk_max, rest, spread, [(0, np.asarray(features.weighted_counts(seqs, w), dtype=np.float64))]


def log_partition(features: FeatureMap, theta: Any, **kwargs: Any) -> float:
    """log Z(θ) of eq. (8), exact by enumeration."""
    return gibbs_stats(features, theta, **kwargs).log_partition


def all_log_probs(
    features: FeatureMap, theta: Any, *, max_sequences: int = DEFAULT_MAX_SEQUENCES
) -> np.ndarray:
    """log P_θ(S) for every sequence in index order, shape (V^T,) (eq. 8)."""
    theta = features.check_theta(theta)
    seqs = features.space.all_sequences(max_sequences=max_sequences)
    return log_gibbs(features.costs(theta, seqs))[0]


def log_gibbs(costs: Any) -> tuple[np.ndarray, float]:
    """(log P over the given sequences, log Z) of eq. (8) from their costs c(S) = θ·f(S).

    log P(S) = −c(S) − log Z with log Z = log Σ_S exp(−c(S)) (a stable log-sum-exp); the costs must
    cover the whole space for P to be normalized. Float64. Costs that are NaN, ±inf or beyond
    ``MAX_ABS_COST`` in size are a ``ValueError``.
    """
    neg_cost = -np.asarray(costs, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(neg_cost) <= MAX_ABS_COST)  # NaN, ±inf or beyond the safe range
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"costs[{i}] = {-float(neg_cost[i])!r} is beyond the float64-safe limit {MAX_ABS_COST:.0e} "
            "of eq. (8)'s log-sum-exp; rescale θ (or the features) so every cost is finite and moderate"
        )
    log_z = float(logsumexp(neg_cost))
    return neg_cost - log_z, log_z


def kl_divergence(q: Any, features: FeatureMap, theta: Any, **kwargs: Any) -> float:
    """KL(q‖P_θ) of eq. (18) (= E_q c − H(q) + log Z, claim E4), for q over all V^T sequences."""
    q = probability_vector(q, "q", size=features.space.size)
    log_p = all_log_probs(features, theta, **kwargs)
    return float(kl_from_log_probs(log_probabilities(q), log_p))


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
        n = non_negative_int(n, "n", hint="the number of draws")
        p = self.probabilities()
        idx = rng.choice(p.size, size=n, p=p / p.sum())
        return self.features.space.decode(idx)
