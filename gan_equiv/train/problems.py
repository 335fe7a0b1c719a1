"""Tiny exact problems for EB-SeqGAN experiments (the SeqGAN oracle: :mod:`gan_equiv.models.oracle`).

- :class:`ExactProblem` — a ground-truth distribution over all V^T sequences, known exactly
  (float64 log-probabilities in :class:`~maxent_il.space.SequenceSpace` index order) together with
  training samples drawn from it. Two constructors: :func:`markov_chain_problem` (random initial
  distribution and transition matrix, Dirichlet) and :func:`gibbs_problem` (a random θ for a
  ``maxent_il`` Gibbs model P_θ ∝ exp(−θ·f), eq. 8). Both carry a feature map and θ whose cost
  c(S) = θ·f(S) reproduces the truth (a Markov chain is the Gibbs model of its ``last`` features
  with θ = −log-probabilities and log Z = 0), so a learned energy can be compared to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.special import logsumexp

from gan_equiv.checks import positive_float, positive_int
from gan_equiv.models.policies import TabularPolicy
from maxent_il.features import StateActionFeatures, StateKind
from maxent_il.gibbs import GibbsModel
from maxent_il.space import SequenceSpace

#: Largest space (V^T) the exact problems enumerate; pass ``max_sequences`` to go beyond.
MAX_EXACT_SEQUENCES = 2**20

# =============================================================================================
# Tiny exact problems
# =============================================================================================


@dataclass(frozen=True, eq=False)
class ExactProblem:
    """A ground-truth distribution p over all V^T sequences, known exactly, and samples from it.

    Attributes:
        name: short identifier, e.g. ``"markov(V=3,T=4)"``.
        description: one line saying how the truth was generated (with its seed).
        space: the sequence space (V items, horizon T).
        log_probs: log p(S) for every sequence in index order (s_1 most significant), float64 (V^T,).
        samples: the training sequences, i.i.d. from p: int64 (n_samples, T).
        features: a feature map whose linear cost reproduces p (``last`` for a Markov chain).
        theta: θ with p(S) = exp(−θ·f(S)) / Z exactly; ``costs()`` gives c(S) = θ·f(S).
        seed: the seed everything was drawn from.
    """

    name: str
    description: str
    space: SequenceSpace
    log_probs: np.ndarray
    samples: np.ndarray
    features: StateActionFeatures
    theta: np.ndarray
    seed: int

    @property
    def probabilities(self) -> np.ndarray:
        """p(S) over the whole space in index order, float64 (V^T,)."""
        return np.exp(self.log_probs)

    @property
    def entropy(self) -> float:
        """H(p) in nats (exact)."""
        p = self.probabilities
        nz = p > 0
        return float(-(p[nz] * self.log_probs[nz]).sum())

    @property
    def entropy_per_token(self) -> float:
        """H(p) / T in nats: what a perfect model's per-token NLL on fresh samples averages to."""
        return self.entropy / self.space.horizon

    def costs(self) -> np.ndarray:
        """The true cost c(S) = θ·f(S) of every sequence in index order (log p = −c − log Z)."""
        return np.concatenate([self.features.costs(self.theta, seqs) for _, seqs in self.space.iter_chunks()])

    def log_prob(self, sequences: Any) -> np.ndarray:
        """log p(S) of given sequences (validated): float64 (N,)."""
        return self.log_probs[self.space.encode(sequences)]

    def empirical_distribution(self, sequences: Any | None = None) -> np.ndarray:
        """Frequencies of ``sequences`` (default: the training samples) over the space: (V^T,)."""
        seqs = self.samples if sequences is None else sequences
        idx = self.space.encode(seqs)
        return np.bincount(idx, minlength=self.space.size).astype(np.float64) / idx.size

    def next_item_log_probs(self, prefixes: Any) -> np.ndarray:
        """True conditionals log p(s_t = · | h_t) for histories of one length t−1 < T: (N, V).

        Marginalizes the exact table: log p(h, a) is a log-sum-exp over the contiguous block of
        sequences with prefix h·a. A history of probability zero gets the uniform conditional.
        The signature fits :meth:`TabularPolicy.set_conditionals`.
        """
        V, T = self.space.n_items, self.space.horizon
        pre = np.asarray(prefixes, dtype=np.int64)
        if pre.ndim != 2 or pre.shape[1] >= T:
            raise ValueError(f"prefixes must have shape (N, t) with t < T={T}, got {pre.shape}")
        if pre.size and (pre.min() < 0 or pre.max() >= V):
            bad = pre[(pre < 0) | (pre >= V)][0]
            raise ValueError(f"prefix item {bad} is outside 0..{V - 1} (V={V})")
        t = pre.shape[1]
        joint = logsumexp(self.log_probs.reshape(V ** (t + 1), -1), axis=1).reshape(V**t, V)
        node = np.zeros(pre.shape[0], dtype=np.int64)
        for col in range(t):  # loop over t columns, vectorized over N
            node = node * V + pre[:, col]
        rows = joint[node]
        marg = logsumexp(rows, axis=1, keepdims=True)
        with np.errstate(invalid="ignore"):
            out = rows - marg
        out[np.isneginf(marg[:, 0])] = -np.log(V)
        return out

    def tabular_policy(self, *, dtype: torch.dtype = torch.float64) -> TabularPolicy:
        """A :class:`TabularPolicy` equal to p (its conditionals set from the exact table)."""
        policy = TabularPolicy(self.space.n_items, self.space.horizon, dtype=dtype)
        return policy.set_conditionals(self.next_item_log_probs)


def _exact_space(n_items: int, horizon: int, max_sequences: int) -> SequenceSpace:
    space = SequenceSpace(n_items, horizon)
    space.check_enumerable(max_sequences=max_sequences)
    return space


def _draw_samples(
    space: SequenceSpace, log_probs: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    p = np.exp(log_probs)
    return space.decode(rng.choice(space.size, size=n, p=p / p.sum()))


def markov_chain_problem(
    n_items: int,
    horizon: int,
    *,
    n_samples: int = 1000,
    concentration: float = 1.0,
    seed: int = 0,
    max_sequences: int = MAX_EXACT_SEQUENCES,
) -> ExactProblem:
    """A random first-order Markov chain: p(S) = π₀(s_1) Π_{t≥2} P(s_t | s_{t−1}).

    π₀ and each row of P are Dirichlet(concentration · 1) (small concentration: peaked rows).
    Probabilities below 1e-300 (Dirichlet underflow at tiny concentrations) are raised to it, so
    every sequence has a finite cost. The truth is also stored as the ``last``-feature Gibbs model
    with θ[prev·V + a] = −log P(a | prev), θ[V² + a] = −log π₀(a) (so log Z = 0).
    """
    V = positive_int(n_items, "n_items")
    T = positive_int(horizon, "horizon")
    n = positive_int(n_samples, "n_samples")
    alpha = positive_float(concentration, "concentration")
    space = _exact_space(V, T, max_sequences)
    rng = np.random.default_rng(seed)
    initial = rng.dirichlet(np.full(V, alpha))
    transition = rng.dirichlet(np.full(V, alpha), size=V)
    initial = np.maximum(initial, 1e-300)
    transition = np.maximum(transition, 1e-300)
    initial /= initial.sum()
    transition /= transition.sum(axis=1, keepdims=True)
    features = StateActionFeatures(space, "last")
    theta = np.concatenate([-np.log(transition).ravel(), -np.log(initial)])
    log_probs = np.concatenate([-features.costs(theta, seqs) for _, seqs in space.iter_chunks()])
    log_probs -= logsumexp(log_probs)  # exact up to rounding already; removes the ~1e-16 drift
    return ExactProblem(
        name=f"markov(V={V},T={T})",
        description=f"random Markov chain, Dirichlet({alpha:g}) initial and transition rows, seed {seed}",
        space=space,
        log_probs=log_probs,
        samples=_draw_samples(space, log_probs, n, rng),
        features=features,
        theta=theta,
        seed=seed,
    )


def gibbs_problem(
    n_items: int,
    horizon: int,
    *,
    state: StateKind = "last",
    scale: float = 1.0,
    n_samples: int = 1000,
    seed: int = 0,
    max_sequences: int = MAX_EXACT_SEQUENCES,
) -> ExactProblem:
    """A random MaxEnt model P_θ(S) = exp(−θ·f(S)) / Z (eq. 8) with θ ~ N(0, scale²).

    f is the state-action occurrence map with the given ``state`` (``last``, ``time_last`` or
    ``history``); the log-probabilities come from :class:`maxent_il.gibbs.GibbsModel`.
    """
    V = positive_int(n_items, "n_items")
    T = positive_int(horizon, "horizon")
    n = positive_int(n_samples, "n_samples")
    sigma = positive_float(scale, "scale")
    space = _exact_space(V, T, max_sequences)
    features = StateActionFeatures(space, state)
    rng = np.random.default_rng(seed)
    theta = rng.normal(scale=sigma, size=features.dim)
    log_probs = GibbsModel(features, theta, max_sequences=max_sequences).all_log_probs()
    return ExactProblem(
        name=f"gibbs-{state}(V={V},T={T})",
        description=f"random Gibbs model, {state!r} features, θ ~ N(0, {sigma:g}²), seed {seed}",
        space=space,
        log_probs=np.asarray(log_probs, dtype=np.float64),
        samples=_draw_samples(space, log_probs, n, rng),
        features=features,
        theta=theta,
        seed=seed,
    )
