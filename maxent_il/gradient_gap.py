"""Claim E5: how far the approximate gradient (16) is from the exact one (15), and its bounds.

    (16) − (15) = E_q f − E_{P_θ} f   (the demo and λ terms cancel),

bounded coordinate-wise by the feature range times TV(q, P_θ), hence by 2‖f‖_∞·TV and, by Pinsker
(TV ≤ √(KL/2)), by ‖f‖_∞·√(2 KL(q‖P_θ)). Exact on tiny enumerable spaces, float64. The derivation
is in docs/derivations.md; the loop that records these bounds is :func:`maxent_il.two_step.two_step`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from maxent_il.divergences import kl_from_log_probs, log_probabilities
from maxent_il.features import FeatureMap
from maxent_il.gibbs import log_gibbs
from maxent_il.q_step import q_distribution


@dataclass(frozen=True)
class GradientGap:
    """‖(16) − (15)‖_∞ = ‖E_q f − E_P f‖_∞ and the chain of bounds it satisfies.

    For every coordinate i and any constant m_i, E_q f_i − E_P f_i = Σ_S (q − P)(S)(f_i(S) − m_i);
    with m_i the midrange this gives |E_q f_i − E_P f_i| ≤ ½‖q − P‖₁·(max f_i − min f_i). Hence

        gap ≤ range_bound ≤ tv_bound ≤ pinsker_bound,  where
        range_bound   = TV · max_i (max_S f_i − min_S f_i),
        tv_bound      = ‖f‖_∞ · 2 TV           (range_i ≤ 2 max_S |f_i| ≤ 2‖f‖_∞),
        pinsker_bound = ‖f‖_∞ · √(2 KL(q‖P))   (Pinsker: TV ≤ √(KL/2)),

    with TV = ½ Σ_S |q(S) − P(S)| and ‖f‖_∞ = max_S max_i |f_i(S)| (up to T for state-action
    counts).

    Attributes:
        gap: ‖E_q f − E_P f‖_∞.
        difference: E_q f − E_P f, shape (d,) (= (16) − (15), the demo and λ terms cancel).
        feature_range: max_S f_i − min_S f_i, shape (d,); |difference_i| ≤ feature_range_i · tv.
        range_bound, tv_bound, pinsker_bound: the bounds above.
        tv: total variation TV(q, P_θ).
        kl: KL(q‖P_θ).
        feature_sup: ‖f‖_∞.
    """

    gap: float
    difference: np.ndarray
    feature_range: np.ndarray
    range_bound: float
    tv_bound: float
    pinsker_bound: float
    tv: float
    kl: float
    feature_sup: float


def feature_extremes(features: FeatureMap) -> tuple[np.ndarray, np.ndarray]:
    """(min_S f(S), max_S f(S)) per coordinate over the whole space, each of shape (d,)."""
    lo = np.full(features.dim, np.inf)
    hi = np.full(features.dim, -np.inf)
    chunk = max(1, 2**22 // features.dim)  # keep each dense (n, d) block near 32 MiB
    for _, seqs in features.space.iter_chunks(chunk_size=chunk):
        counts = features.counts(seqs)
        lo = np.minimum(lo, counts.min(axis=0))
        hi = np.maximum(hi, counts.max(axis=0))
    return lo, hi


def gap_from_moments(
    q: np.ndarray,
    log_p: np.ndarray,
    q_expect: np.ndarray,
    p_expect: np.ndarray,
    extremes: tuple[np.ndarray, np.ndarray],
) -> GradientGap:
    """The :class:`GradientGap` of q against P_θ from their moments: ``q`` (V^T,) probabilities,
    ``log_p`` (V^T,) log P_θ, ``q_expect`` = E_q f and ``p_expect`` = E_P f (d,), ``extremes`` =
    :func:`feature_extremes`. Lets a loop reuse moments it already has."""
    lo, hi = extremes
    diff = q_expect - p_expect
    tv = 0.5 * float(np.abs(q - np.exp(log_p)).sum())
    kl = max(float(kl_from_log_probs(log_probabilities(q), log_p)), 0.0)
    sup = float(max(np.abs(lo).max(), np.abs(hi).max()))
    rng = hi - lo
    return GradientGap(
        gap=float(np.abs(diff).max()),
        difference=diff,
        feature_range=rng,
        range_bound=float(rng.max()) * tv,
        tv_bound=sup * 2.0 * tv,
        pinsker_bound=sup * float(np.sqrt(2.0 * kl)),
        tv=tv,
        kl=kl,
        feature_sup=sup,
    )


def gradient_gap_bound(features: FeatureMap, q: Any, theta: Any) -> GradientGap:
    """E5: ‖(16) − (15)‖_∞ = ‖E_q f − E_{P_θ} f‖_∞ and its TV and Pinsker bounds (:class:`GradientGap`)."""
    theta = features.check_theta(theta)
    q = q_distribution(features, q)
    seqs = features.space.all_sequences()
    log_p, _ = log_gibbs(features.costs(theta, seqs))
    q_expect = features.weighted_counts(seqs, q)
    p_expect = features.weighted_counts(seqs, np.exp(log_p))
    return gap_from_moments(q, log_p, q_expect, p_expect, feature_extremes(features))
