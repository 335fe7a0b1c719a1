"""Exact divergences between distributions over all V^T sequences, and energy-vs-cost alignment.

Float64, numpy only (torch tensors are accepted and converted), so both the trainer's evaluators
and the claim checks can use them:

- :func:`entropy`, :func:`log_probabilities`, :func:`kl_from_log_probs` — the one definition of
  H(p) and of KL(p‖q) (eq. 18) in the project, 0·log 0 = 0, vectorized over rows;
- :func:`exact_kl`, :func:`total_variation`, :func:`exact_divergences` — how far a generator p_G is
  from the truth, in both KL directions and in total variation;
- :func:`energy_cost_alignment` — how well a learned energy D matches an exact cost c up to the
  affine freedom energies have (a·D + b ≈ c);
- :func:`per_step_errors` — exact per-step (cascading) errors of a sequence model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import logsumexp
from scipy.stats import rankdata

from maxent_il.checks import probability_vector

#: How far from 0 the log-sum-exp of a log-probability vector may be before it is refused
#: (float32 generators summed over 10^6 sequences stay well within it).
NORMALIZATION_TOL = 1e-4


def entropy(p: Any) -> float:
    """Shannon entropy H(p) = −Σ_S p(S) log p(S) in nats, with 0 log 0 = 0 (the H of eqs. 7, 18, 20).

    ``p`` must be a probability vector: 1-d, finite, non-negative, summing to 1 within
    ``PROBABILITY_SUM_TOL`` (1e-9); anything else (weights, counts, log-probabilities) is a
    ``ValueError`` naming the entry or the sum. For a Gibbs distribution prefer
    ``gibbs_stats(...).entropy`` or ``soft_bellman(...).entropy``, which stay accurate when P is
    nearly deterministic (the probabilities themselves round to 0 and 1 there).
    """
    p = probability_vector(p, "p", hint="the distribution whose entropy is taken")
    nz = p > 0
    return float(-(p[nz] * np.log(p[nz])).sum())


def log_probabilities(p: Any) -> np.ndarray:
    """log p elementwise with log 0 = −inf (no warning): probabilities → log-probabilities."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, -np.inf)
    np.log(p, out=out, where=p > 0)
    return out


def kl_from_log_probs(log_p: Any, log_q: Any, *, axis: int = -1) -> np.ndarray:
    """KL(p‖q) = Σ p (log p − log q) along ``axis`` (eq. 18's divergence), from log-probabilities.

    Terms with p = 0 contribute 0; the sum is +inf where q = 0 < p. Rows of conditionals
    (shape (M, V)) give M divergences at once; 1-d inputs give a 0-d array. No normalization or
    validation here (:func:`exact_kl` validates whole-space vectors).
    """
    log_p = np.asarray(log_p, dtype=np.float64)
    log_q = np.asarray(log_q, dtype=np.float64)
    p = np.exp(log_p)
    with np.errstate(invalid="ignore"):
        terms = np.where(p > 0, p * (log_p - log_q), 0.0)
    return terms.sum(axis=axis)


def _as_float64(values: Any, name: str) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor, without importing torch here
        values = values.detach().cpu().double().numpy()
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-d array over the space, got shape {arr.shape}")
    return arr


def _check_log_probs(log_probs: Any, name: str, tol: float) -> np.ndarray:
    """Validate a log-probability vector (−inf allowed, NaN/+inf not) and renormalize it exactly."""
    arr = _as_float64(log_probs, name)
    bad = np.isnan(arr) | np.isposinf(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}[{i}] = {arr[i]} is not a log-probability (NaN or +inf)")
    if np.isneginf(arr).all():
        raise ValueError(f"{name} has no mass: every entry is -inf")
    total = float(logsumexp(arr))
    if abs(total) > tol:
        raise ValueError(
            f"{name} is not normalized: logsumexp = {total:.3e} (tolerance {tol:g}); "
            "pass log-probabilities over the whole space (e.g. policy.all_log_probs())"
        )
    return arr - total


def _pair(p_log: Any, q_log: Any, tol: float) -> tuple[np.ndarray, np.ndarray]:
    p = _check_log_probs(p_log, "p_log", tol)
    q = _check_log_probs(q_log, "q_log", tol)
    if p.shape != q.shape:
        raise ValueError(f"p_log and q_log cover different spaces: shapes {p.shape} and {q.shape}")
    return p, q


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p‖q) of two validated log-probability vectors, clipped at 0 (rounding noise ~1e-16)."""
    return max(float(kl_from_log_probs(p, q)), 0.0)


def _tv(p: np.ndarray, q: np.ndarray) -> float:
    """TV(p, q) = ½ Σ |p − q| of two validated log-probability vectors, clipped at 1."""
    return float(min(0.5 * np.abs(np.exp(p) - np.exp(q)).sum(), 1.0))


def exact_kl(p_log: Any, q_log: Any, *, tol: float = NORMALIZATION_TOL) -> float:
    """KL(p‖q) = Σ_S p(S) (log p(S) − log q(S)) in nats, exactly, over the enumerated space.

    Both arguments are log-probability vectors over the same V^T sequences (numpy or torch; −inf
    marks probability zero). Terms with p = 0 contribute 0; KL = +inf when q = 0 somewhere p > 0.
    Each vector must be normalized within ``tol`` (then it is renormalized exactly in float64).
    For a generator: ``exact_kl(data_log, gen_log)`` is KL(p_data‖p_G) (mode covering, what MLE
    minimizes) and ``exact_kl(gen_log, data_log)`` is KL(p_G‖p_data) (mode seeking).
    """
    p, q = _pair(p_log, q_log, tol)
    return _kl(p, q)


def total_variation(p_log: Any, q_log: Any, *, tol: float = NORMALIZATION_TOL) -> float:
    """TV(p, q) = ½ Σ_S |p(S) − q(S)| ∈ [0, 1], exactly (log-probability inputs as in :func:`exact_kl`).

    Pinsker: TV ≤ √(KL/2) for either direction of KL.
    """
    p, q = _pair(p_log, q_log, tol)
    return _tv(p, q)


@dataclass(frozen=True)
class Divergences:
    """Exact distances between p (e.g. p_data) and q (e.g. p_G), in nats.

    Attributes:
        kl_pq: KL(p‖q) — mode covering; what MLE on samples of p minimizes.
        kl_qp: KL(q‖p) — mode seeking; the generator objective of eq. (20) when p = P_θ.
        tv: total variation ½‖p − q‖₁.
    """

    kl_pq: float
    kl_qp: float
    tv: float


def exact_divergences(p_log: Any, q_log: Any, *, tol: float = NORMALIZATION_TOL) -> Divergences:
    """KL in both directions and TV between two log-probability vectors over the whole space."""
    p, q = _pair(p_log, q_log, tol)
    return Divergences(kl_pq=_kl(p, q), kl_qp=_kl(q, p), tv=_tv(p, q))


# =============================================================================================
# Energy vs cost
# =============================================================================================


@dataclass(frozen=True)
class Alignment:
    """How well an energy D matches a cost c up to an affine map (energies are defined up to it).

    Attributes:
        scale, offset: the (weighted) least-squares fit c ≈ scale·D + offset.
        pearson: (weighted) Pearson correlation of D and c; NaN when either is constant.
        spearman: (weighted) Pearson correlation of their average ranks; NaN when either is constant.
        rmse: (weighted) root-mean-square residual of c − (scale·D + offset), in cost units.
        n: number of points used (those with positive weight).
    """

    scale: float
    offset: float
    pearson: float
    spearman: float
    rmse: float
    n: int


def _weighted_corr(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    if np.ptp(x) == 0 or np.ptp(y) == 0:  # a constant: correlation undefined
        return float("nan")
    xc, yc = x - w @ x, y - w @ y
    sxx, syy = w @ (xc * xc), w @ (yc * yc)
    return float(np.clip((w @ (xc * yc)) / np.sqrt(sxx * syy), -1.0, 1.0))


def energy_cost_alignment(energy_values: Any, cost_values: Any, *, weights: Any | None = None) -> Alignment:
    """Best affine alignment a·D + b ≈ c, with Pearson/Spearman correlation and the RMSE after it.

    ``energy_values`` D and ``cost_values`` c are per-sequence values (e.g. over the whole space,
    or over the support of p_data). ``weights`` (≥ 0, e.g. p_data) weight the least squares, the
    correlations and the RMSE; points of weight 0 are left out entirely (also from the ranks).
    A constant energy gives scale 0, offset = mean c and NaN correlations.
    """
    D = _as_float64(energy_values, "energy_values")
    c = _as_float64(cost_values, "cost_values")
    if D.shape != c.shape:
        raise ValueError(f"energy_values and cost_values differ in shape: {D.shape} vs {c.shape}")
    if weights is None:
        w = np.ones_like(D)
    else:
        w = _as_float64(weights, "weights")
        if w.shape != D.shape:
            raise ValueError(f"weights must have shape {D.shape}, got {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            i = int(np.flatnonzero(~np.isfinite(w) | (w < 0))[0])
            raise ValueError(f"weights[{i}] = {w[i]} is not a finite non-negative weight")
    keep = w > 0
    for name, arr in (("energy_values", D), ("cost_values", c)):
        bad = keep & ~np.isfinite(arr)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{name}[{i}] = {arr[i]} is not finite (give it weight 0 to leave it out)")
    if keep.sum() < 2:
        raise ValueError(f"need at least 2 points of positive weight, got {int(keep.sum())}")
    D, c, w = D[keep], c[keep], w[keep] / w[keep].sum()
    Dm, cm = w @ D, w @ c
    var_D = w @ (D - Dm) ** 2
    scale = float((w @ ((D - Dm) * (c - cm))) / var_D) if np.ptp(D) > 0 else 0.0
    offset = float(cm - scale * Dm)
    resid = c - (scale * D + offset)
    return Alignment(
        scale=scale,
        offset=offset,
        pearson=_weighted_corr(D, c, w),
        spearman=_weighted_corr(rankdata(D), rankdata(c), w),
        rmse=float(np.sqrt(w @ resid**2)),
        n=int(keep.sum()),
    )


# =============================================================================================
# Cascading errors (exact, tiny spaces)
# =============================================================================================

#: Keys of :func:`per_step_errors`: own/data-fed histories × forward/reverse conditional KL.
PER_STEP_ERRORS = ("own_fwd", "data_fwd", "own_rev", "data_rev")


def prefix_log_probs(log_p: np.ndarray, n_items: int, horizon: int) -> list[np.ndarray]:
    """log p(s_1 … s_t) for t = 0 … T, each over all V^t prefixes in index order (t = 0: [0])."""
    return [logsumexp(log_p.reshape(n_items**t, -1), axis=1) for t in range(horizon + 1)]


def per_step_errors(log_true: np.ndarray, log_model: np.ndarray, n_items: int, horizon: int) -> dict:
    """Exact per-step (cascading) errors of a sequence model, t = 1 … T: arrays of shape (T,).

    The paper's §6 asks for a metric that sees cascading errors. Along the model's *own* rollouts
    (``own_*``: histories weighted by p_model(h_t)) and along *data* prefixes (``data_*``: weighted by
    p_true(h_t)), the error of the next-item conditional at step t. By the chain rule,
    Σ_t own_rev = KL(p_model‖p_true) and Σ_t data_fwd = KL(p_true‖p_model).

    ``own_*`` weight each history by p_model(h_t), ``data_*`` by p_true(h_t); ``*_fwd`` is
    KL(p_true(·|h)‖p_model(·|h)), ``*_rev`` is KL(p_model(·|h)‖p_true(·|h)). Vectorized over all
    V^(t−1) histories of each step; both inputs are log-probabilities over all V^T sequences.
    """
    V, T = n_items, horizon
    true_pre = prefix_log_probs(log_true, V, T)
    model_pre = prefix_log_probs(log_model, V, T)
    out = {k: np.empty(T) for k in PER_STEP_ERRORS}
    for t in range(1, T + 1):  # loop over T steps, vectorized over histories
        with np.errstate(invalid="ignore"):
            cond_true = true_pre[t].reshape(-1, V) - true_pre[t - 1][:, None]  # (V^(t−1), V)
            cond_model = model_pre[t].reshape(-1, V) - model_pre[t - 1][:, None]
        fwd = kl_from_log_probs(cond_true, cond_model, axis=1)  # (V^(t−1),)
        rev = kl_from_log_probs(cond_model, cond_true, axis=1)
        w_model, w_true = np.exp(model_pre[t - 1]), np.exp(true_pre[t - 1])
        out["own_fwd"][t - 1] = w_model @ np.where(w_model > 0, fwd, 0.0)
        out["data_fwd"][t - 1] = w_true @ np.where(w_true > 0, fwd, 0.0)
        out["own_rev"][t - 1] = w_model @ np.where(w_model > 0, rev, 0.0)
        out["data_rev"][t - 1] = w_true @ np.where(w_true > 0, rev, 0.0)
    return out
