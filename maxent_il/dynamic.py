"""Soft Bellman backup for decomposable costs: log Z, the policy of P_θ, marginals, E_P f.

For a decomposable feature map one feature fires per step, c(S) = Σ_t θ[idx_t(h_t, s_t)], and
P_θ of eq. (8) factorizes into autoregressive conditionals (claim E12, docs/derivations.md):

    W_{T+1}(h) = 0,
    W_t(h_t)   = log Σ_a exp(−θ[idx_t(h_t, a)] + W_{t+1}(h_t a)),         (soft Bellman backup)
    π_t(a | h_t) = exp(−θ[idx_t(h_t, a)] + W_{t+1}(h_t a) − W_t(h_t)),
    log Z = W_1(∅),  and  P_θ(S) = Π_t π_t(s_t | h_t).

The state is the previous item for ``last``/``time_last`` (O(T·V²) work, far beyond enumeration)
and the whole prefix for ``history`` (the prefix tree, O(V^T) work but no T-fold enumeration
overhead). A forward pass then gives per-step marginals and the expected features E_P f, i.e.
the model term of the log-likelihood gradient (eq. 15).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
from scipy.special import logsumexp

from maxent_il.checks import choice, non_negative_int
from maxent_il.features import FeatureMap, StateActionFeatures

DPMethod = Literal["auto", "log", "scaled"]
DP_METHODS: tuple[str, ...] = ("auto", "log", "scaled")

#: Largest spread of transition costs (max − min) for which the scaled (matrix-product) path is
#: used; within it, every scaled quantity stays above e^{−2·300}, far from float64 underflow.
SCALED_COST_RANGE = 300.0


@dataclass(frozen=True, eq=False)
class SoftBellmanResult:
    """Exact solution of the soft Bellman backup for P_θ (eq. 8) with decomposable features.

    Attributes:
        features: the feature map (``last``, ``time_last`` or ``history``).
        theta: the cost parameters θ, shape (d,).
        log_partition: log Z = W_1(∅).
        expected_features: E_P f, shape (d,) — the model term of eq. (15).
        item_marginals: P(s_t = a), shape (T, V).
        values: soft values after each step. Markov states: shape (T, V), ``values[t−1, a]`` =
            W_{t+1}(… a). ``history``: a list of T arrays, ``values[t−1]`` of shape (V^t,)
            indexed by the prefix s_1 … s_t.
    """

    features: StateActionFeatures
    theta: np.ndarray
    log_partition: float
    expected_features: np.ndarray
    item_marginals: np.ndarray
    values: Any

    @cached_property
    def entropy(self) -> float:
        """H(P_θ) = Σ_t E_P[H(π_t(·|h_t))] (nats; chain rule of eq. 8's factorization, E12).

        Equal to log Z + θ·E_P f, but summed from each state's normalized conditional
        log-probabilities (:func:`row_entropies`), so every term is non-negative and H keeps its
        relative accuracy when P is nearly deterministic (large θ), where log Z and θ·E_P f cancel.
        """
        feats, theta = self.features, self.theta
        V, T = feats.space.n_items, feats.space.horizon
        if feats.state == "history":
            offsets = feats.history_offsets()
            total = 0.0
            for depth in range(T):  # loop over T depths, vectorized over the V^depth prefixes
                node_costs = theta[offsets[depth] : offsets[depth] + V ** (depth + 1)]
                logits = (-node_costs + self.values[depth]).reshape(V**depth, V)
                weight = self.expected_features[offsets[depth - 1] : offsets[depth]] if depth else np.ones(1)
                total += float(weight @ row_entropies(logits))
            return total
        first = -theta[feats.first_step_index()] + self.values[0]
        total = float(row_entropies(first[None, :])[0])
        for t in range(2, T + 1):  # loop over T steps, vectorized over the V previous items
            logits = -theta[feats.transition_index(t)] + self.values[t - 1][None, :]  # (V prev, V a)
            total += float(self.item_marginals[t - 2] @ row_entropies(logits))
        return total

    def values_along(self, sequences: Any) -> np.ndarray:
        """W_t(h_t) along each sequence for t = 1 … T+1: shape (N, T+1); column 0 is log Z."""
        seqs = self.features.space.validate(sequences)
        n, T = seqs.shape
        out = np.empty((n, T + 1))
        out[:, 0] = self.log_partition
        if self.features.state == "history":
            V = self.features.space.n_items
            prefix = np.zeros(n, dtype=np.int64)
            for col in range(T):  # loop over T depths, vectorized over N
                prefix = prefix * V + seqs[:, col]
                out[:, col + 1] = self.values[col][prefix]
        else:
            out[:, 1:] = self.values[np.arange(T)[None, :], seqs]
        return out

    def log_conditionals(self, sequences: Any) -> np.ndarray:
        """log π_t(s_t | h_t) for each step of each sequence: shape (N, T)."""
        seqs = self.features.space.validate(sequences)
        vals = self.values_along(seqs)
        return -self.theta[self.features.step_indices(seqs)] + vals[:, 1:] - vals[:, :-1]

    def log_prob(self, sequences: Any) -> np.ndarray:
        """log P_θ(S) = Σ_t log π_t(s_t | h_t), shape (N,)."""
        return self.log_conditionals(sequences).sum(axis=1)

    def next_item_log_probs(self, prefixes: Any) -> np.ndarray:
        """log π_t(· | h_t) for histories h_t = s_1 … s_{t−1} of equal length t−1 < T: shape (N, V)."""
        V, T = self.features.space.n_items, self.features.space.horizon
        raw = np.asarray(prefixes)
        if raw.size and (
            raw.dtype.kind not in "iuf"
            or (raw.dtype.kind == "f" and not np.all(np.isfinite(raw) & (raw == np.round(raw))))
        ):
            raise ValueError(f"prefixes must hold integer item ids, got dtype {raw.dtype}: {raw.ravel()[:4]}")
        pre = raw.astype(np.int64)
        if pre.ndim != 2 or pre.shape[1] >= T:
            raise ValueError(f"prefixes must have shape (N, t−1) with t−1 < T={T}, got {pre.shape}")
        if pre.size and (pre.min() < 0 or pre.max() >= V):
            raise ValueError(f"prefix items must lie in 0..{V - 1}")
        n, length = pre.shape
        t = length + 1
        if self.features.state == "history":
            node = np.zeros(n, dtype=np.int64)
            for col in range(length):
                node = node * V + pre[:, col]
            children = node[:, None] * V + np.arange(V)  # (N, V)
            offset = self.features.history_offsets()[t - 1]
            before = self.values[length - 1][node] if length else np.full(n, self.log_partition)
            return -self.theta[offset + children] + self.values[t - 1][children] - before[:, None]
        if t == 1:
            logits = -self.theta[self.features.first_step_index()] + self.values[0]
            return np.broadcast_to(logits - self.log_partition, (n, V)).copy()
        prev = pre[:, -1]
        costs = self.theta[self.features.transition_index(t)[prev]]  # (N, V)
        return -costs + self.values[t - 1][None, :] - self.values[t - 2][prev][:, None]

    def sample(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        """n exact ancestral draws from P_θ via the conditionals π_t: int64 array (n, T)."""
        n = non_negative_int(n, "n", hint="the number of draws")
        T = self.features.space.horizon
        out = np.empty((n, T), dtype=np.int64)
        for t in range(T):  # loop over T steps, vectorized over n sequences
            cdf = np.cumsum(np.exp(self.next_item_log_probs(out[:, :t])), axis=1)
            u = rng.random(n) * cdf[:, -1]
            out[:, t] = np.minimum((u[:, None] >= cdf).sum(axis=1), cdf.shape[1] - 1)
        return out


def row_entropies(logits: Any) -> np.ndarray:
    """Entropy of softmax(logits) per row, shape (M, V) → (M,), in nats (the H of eqs. 7, 20).

    With m the row maximum, z = logits − m ≤ 0 and R = Σ_{j ≠ argmax} e^{z_j}, the row's
    log-probabilities are z − log1p(R), so H = −Σ π log π = Σ e^{z}(−z) / (1 + R) + log1p(R): a sum
    of non-negative terms, accurate to rounding even for a nearly deterministic row.
    """
    x = np.asarray(logits, dtype=np.float64)
    rows = np.arange(x.shape[0])
    top = x.argmax(axis=1)
    z = x - x[rows, top][:, None]  # (M, V), ≤ 0
    w = np.exp(z)
    w_rest = w.copy()
    w_rest[rows, top] = 0.0
    rest = w_rest.sum(axis=1)  # (M,): the mass beside the maximum, relative to it
    return -(w * z).sum(axis=1) / (1.0 + rest) + np.log1p(rest)


def _check_decomposable(features: FeatureMap) -> StateActionFeatures:
    if not isinstance(features, StateActionFeatures):
        raise ValueError(
            f"the dynamic-programming path needs decomposable state-action features "
            f"(StateActionFeatures), got {type(features).__name__}; use maxent_il.gibbs (enumeration)"
        )
    return features


def _row_logsumexp(x: np.ndarray) -> np.ndarray:
    """log Σ_j exp(x[i, j]) per row, stable (rows of finite values)."""
    m = x.max(axis=1)
    return m + np.log(np.exp(x - m[:, None]).sum(axis=1))


def _markov_log(features: StateActionFeatures, theta: np.ndarray) -> SoftBellmanResult:
    """Log-domain backup for ``last``/``time_last`` (any cost magnitudes). O(T·V²)."""
    V, T = features.space.n_items, features.space.horizon
    values = np.zeros((T, V))  # values[t-1] = W_{t+1}(a)
    for t in range(T, 1, -1):  # backward over steps t = T … 2
        logits = -theta[features.transition_index(t)] + values[t - 1][None, :]  # (V prev, V a)
        values[t - 2] = _row_logsumexp(logits)
    first = -theta[features.first_step_index()] + values[0]
    log_z = float(logsumexp(first))
    expected = np.zeros(features.dim)
    marginals = np.empty((T, V))
    marginals[0] = np.exp(first - log_z)
    expected[features.first_step_index()] += marginals[0]
    for t in range(2, T + 1):  # forward over steps
        idx = features.transition_index(t)
        log_pi = -theta[idx] + values[t - 1][None, :] - values[t - 2][:, None]
        joint = marginals[t - 2][:, None] * np.exp(log_pi)  # P(s_{t−1}=x, s_t=a), (V, V)
        expected[idx.ravel()] += joint.ravel()  # indices are distinct within one step
        marginals[t - 1] = joint.sum(axis=0)
    return SoftBellmanResult(features, theta, log_z, expected, marginals, values)


def _markov_scaled(features: StateActionFeatures, theta: np.ndarray) -> SoftBellmanResult:
    """Scaled probability-domain backup for ``last`` (one shared transition matrix).

    With K = exp(−(C − min C)) the backup is a matrix-vector product per step, and the summed
    pair marginals are K ⊙ (Uᵀ B) — one matrix product — so the cost is O(T·V² + V²·T) flops
    with only one V² exponential.
    """
    V, T = features.space.n_items, features.space.horizon
    idx = features.transition_index(2)
    costs = theta[idx]  # (V prev, V a)
    cmin = float(costs.min())
    kernel = np.exp(-(costs - cmin))  # (V, V), entries in [e^{-300}, 1]
    scaled = np.ones((T, V))  # scaled[t-1] ∝ exp(W_{t+1})
    log_scale = np.zeros(T)  # W_{t+1} = log scaled[t-1] + log_scale[t-1]
    row_sums = np.ones((T, V))  # row_sums[t-1] = K @ scaled[t-1]
    for t in range(T, 1, -1):  # backward over t = T … 2
        y = kernel @ scaled[t - 1]
        row_sums[t - 1] = y
        s = y.max()
        scaled[t - 2] = y / s
        log_scale[t - 2] = log_scale[t - 1] - cmin + np.log(s)
    values = np.log(scaled) + log_scale[:, None]
    first = -theta[features.first_step_index()] + values[0]
    log_z = float(logsumexp(first))
    marginals = np.empty((T, V))
    marginals[0] = np.exp(first - log_z)
    expected = np.zeros(features.dim)
    expected[features.first_step_index()] += marginals[0]
    if T > 1:
        u = np.empty((T - 1, V))
        for t in range(2, T + 1):  # forward: μ_t = b_{t+1} ⊙ Kᵀ(μ_{t−1} / (K b_{t+1}))
            u[t - 2] = marginals[t - 2] / row_sums[t - 1]
            marginals[t - 1] = scaled[t - 1] * (kernel.T @ u[t - 2])
        pair_counts = kernel * (u.T @ scaled[1:])  # Σ_t P(s_{t−1}=x, s_t=a), (V, V)
        expected[idx.ravel()] += pair_counts.ravel()
    return SoftBellmanResult(features, theta, log_z, expected, marginals, values)


def _history(features: StateActionFeatures, theta: np.ndarray) -> SoftBellmanResult:
    """Backup on the prefix tree for ``history`` features: one vectorized pass per depth."""
    V, T = features.space.n_items, features.space.horizon
    offsets = features.history_offsets()
    node_costs = [theta[offsets[t] : offsets[t] + V ** (t + 1)] for t in range(T)]
    values: list[np.ndarray] = [np.zeros(0)] * T
    values[T - 1] = np.zeros(V**T)
    for depth in range(T - 1, 0, -1):  # values at depth d from children at depth d+1
        logits = (-node_costs[depth] + values[depth]).reshape(V**depth, V)
        values[depth - 1] = logsumexp(logits, axis=1)
    log_z = float(logsumexp(-node_costs[0] + values[0]))
    expected = np.zeros(features.dim)
    marginals = np.empty((T, V))
    prob = np.exp(-node_costs[0] + values[0] - log_z)  # P(prefix of length 1), (V,)
    for depth in range(T):
        if depth:
            parent = np.repeat(prob, V)
            before = np.repeat(values[depth - 1], V)
            prob = parent * np.exp(-node_costs[depth] + values[depth] - before)
        expected[offsets[depth] : offsets[depth] + prob.size] = prob
        marginals[depth] = prob.reshape(-1, V).sum(axis=0)
    return SoftBellmanResult(features, theta, log_z, expected, marginals, values)


def soft_bellman(features: FeatureMap, theta: Any, *, method: DPMethod = "auto") -> SoftBellmanResult:
    """Soft Bellman backup and forward pass for P_θ of eq. (8) with decomposable features (E12).

    Args:
        features: a :class:`StateActionFeatures` map (``last``, ``time_last`` or ``history``).
        theta: cost parameters θ, shape (d,).
        method: ``"log"`` (log-domain, any cost magnitude), ``"scaled"`` (matrix products; only
            for ``last`` with cost spread ≤ ``SCALED_COST_RANGE``) or ``"auto"`` (scaled when it
            applies, log otherwise).

    Returns:
        A :class:`SoftBellmanResult` with log Z, E_P f (the model term of eq. 15), marginals,
        soft values and the conditionals π_t(s_t | h_t) of P_θ.
    """
    feats = _check_decomposable(features)
    theta = feats.check_theta(theta)
    choice(method, "method", DP_METHODS)
    if feats.state == "history":
        if method == "scaled":
            raise ValueError("method='scaled' applies to 'last' features only")
        return _history(feats, theta)
    scaled_ok = False
    if feats.state == "last" and feats.space.horizon > 1:
        trans = theta[: feats.space.n_items**2]
        scaled_ok = float(trans.max() - trans.min()) <= SCALED_COST_RANGE
    if method == "scaled" and not scaled_ok:
        raise ValueError(
            "method='scaled' needs 'last' features whose transition costs spread by at most "
            f"{SCALED_COST_RANGE}; use method='log'"
        )
    if method == "scaled" or (method == "auto" and scaled_ok):
        return _markov_scaled(feats, theta)
    return _markov_log(feats, theta)
