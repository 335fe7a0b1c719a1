"""Exact building blocks of the GAN ⇄ IRL family checks (E13 onward), float64 over all V^T sequences.

- :func:`tabular_policy_of` — the tabular generator whose p_G is a given distribution (p_G = p_data);
- :func:`gibbs_policy` — the generator at its MaxEnt optimum p_G = P_c (soft Bellman, eq. 20);
- :func:`generic_policy` — a seeded generic generator (neither of the above);
- :func:`js_divergence` — JS(p‖q) in nats (numpy, or torch with autograd);
- :func:`seqgan_optimal_logits` — ℓ* = log p_data − log p_G, the optimal classifier of eq. (1);
- :func:`gcl_optimal_log_z` — the log Z minimizing GAN-GCL's discriminator loss (root of its
  first-order condition E_data[1 − D] = E_G[D]).

Shapes: distributions over the space are (V^T,) in index order (s_1 most significant).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import brentq
from scipy.special import expit
from torch import Tensor

from gan_equiv.models.policies import TabularPolicy
from maxent_il.dynamic import soft_bellman
from maxent_il.features import StateActionFeatures
from maxent_il.space import SequenceSpace


def all_sequences(space: SequenceSpace) -> Tensor:
    """Every sequence of the space in index order: int64 (V^T, T)."""
    return torch.as_tensor(space.all_sequences())


def tabular_policy_of(probs: np.ndarray, n_items: int, horizon: int) -> TabularPolicy:
    """The float64 tabular generator with p_G(S) = probs(S) (conditionals p(a | h) = p(h a)/p(h), eq. 13).

    Prefixes of zero mass get uniform conditionals (they are never visited).
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.shape != (n_items**horizon,) or np.any(p < 0) or abs(p.sum() - 1.0) > 1e-9:
        raise ValueError(
            f"probs must be a distribution of shape ({n_items**horizon},) over the V^T sequences"
        )

    def conditionals(prefixes: np.ndarray) -> np.ndarray:
        d = prefixes.shape[1]
        nxt = p.reshape(n_items ** (d + 1), -1).sum(axis=1).reshape(n_items**d, n_items)  # p(h a)
        mass = nxt.sum(axis=1, keepdims=True)  # p(h)
        with np.errstate(divide="ignore", invalid="ignore"):
            cond = np.where(mass > 0, nxt / np.where(mass > 0, mass, 1.0), 1.0 / n_items)
            return np.log(cond)

    return TabularPolicy(n_items, horizon, dtype=torch.float64).set_conditionals(conditionals)


def gibbs_policy(features: StateActionFeatures, theta: np.ndarray) -> TabularPolicy:
    """The tabular generator with p_G = P_θ = exp(−θ·f)/Z (eq. 8): the minimizer of (20) for cost θ·f."""
    dp = soft_bellman(features, theta)
    policy = TabularPolicy(features.space.n_items, features.space.horizon, dtype=torch.float64)
    return policy.set_conditionals(dp.next_item_log_probs)


def generic_policy(space: SequenceSpace, seed: int, *, scale: float = 1.0) -> TabularPolicy:
    """A seeded float64 tabular generator with N(0, scale²) logits: a p_G at no optimum."""
    gen = torch.Generator().manual_seed(int(seed))
    return TabularPolicy(space.n_items, space.horizon, init_scale=scale, generator=gen, dtype=torch.float64)


def js_divergence(p: np.ndarray | Tensor, q: np.ndarray | Tensor) -> float | Tensor:
    """JS(p‖q) = ½KL(p‖m) + ½KL(q‖m), m = (p + q)/2, in nats (0 ≤ JS ≤ log 2).

    Torch inputs give a differentiable tensor (terms with zero mass contribute 0).
    """
    if isinstance(p, Tensor) or isinstance(q, Tensor):
        p_t, q_t = torch.as_tensor(p, dtype=torch.float64), torch.as_tensor(q, dtype=torch.float64)
        m = 0.5 * (p_t + q_t)

        def kl_t(a: Tensor) -> Tensor:
            safe = torch.where(a > 0, a, torch.ones_like(a))
            return torch.where(a > 0, a * (torch.log(safe) - torch.log(m)), torch.zeros_like(a)).sum()

        return 0.5 * kl_t(p_t) + 0.5 * kl_t(q_t)
    p_n, q_n = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    m_n = 0.5 * (p_n + q_n)

    def kl_n(a: np.ndarray) -> float:
        on = a > 0
        return float(np.sum(a[on] * (np.log(a[on]) - np.log(m_n[on]))))

    return 0.5 * kl_n(p_n) + 0.5 * kl_n(q_n)


def seqgan_optimal_logits(p_data: np.ndarray, p_g: np.ndarray) -> np.ndarray:
    """ℓ*(S) = log p_data(S) − log p_G(S): the minimizer of the negated eq. (1) over a free logit.

    D* = σ(ℓ*) = p_data / (p_data + p_G) (Goodfellow et al. 2014, Prop. 1); needs full support.
    """
    return np.log(p_data) - np.log(p_g)


def gcl_optimal_log_z(cost: np.ndarray, p_data: np.ndarray, p_g: np.ndarray) -> float:
    """The log Z minimizing GAN-GCL's discriminator loss for fixed c and p_G (Finn et al. 2016).

    The loss is convex in b = log Z with derivative g(b) = E_data[1 − D] − E_G[D] (D = σ(ℓ),
    ℓ = −c − b − log p_G), increasing in b; the root is bracketed, found by Brent's method and
    polished by Newton steps (g'(b) = Σ (p_data + p_G)·D(1 − D)).
    """
    c, pd, pg = (np.asarray(a, dtype=np.float64) for a in (cost, p_data, p_g))
    log_pg = np.log(pg)

    def g(b: float) -> float:
        d = expit(-c - b - log_pg)
        return float(pd @ (1.0 - d) - pg @ d)

    lo, hi = -1.0, 1.0
    while g(lo) > 0:
        lo *= 2.0
    while g(hi) < 0:
        hi *= 2.0
    b = brentq(g, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)
    for _ in range(3):  # Newton polish to rounding
        d = expit(-c - b - log_pg)
        slope = float((pd + pg) @ (d * (1.0 - d)))
        if slope <= 0:
            break
        b -= g(b) / slope
    return float(b)


def policy_flat_gradient(objective: Tensor, policy: torch.nn.Module) -> Tensor:
    """∇objective over the policy's trainable parameters, as one flat float64 vector (zeros if unused)."""
    params = [p for p in policy.parameters() if p.requires_grad]
    grads = torch.autograd.grad(objective, params, allow_unused=True)
    flat = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]
    return torch.cat([g.reshape(-1) for g in flat]).double()
