"""The objectives of the paper as differentiable losses, each with its direction spelled out.

Monte-Carlo estimates are means over the batch; exact versions (sums over the enumerated space with
weights p) are obtained by passing probability weights.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _weighted_mean(values: Tensor, weights: Tensor | None) -> Tensor:
    """Σ w·v with w summing to one when weights are given; the plain mean otherwise."""
    if weights is None:
        return values.mean()
    if weights.shape != values.shape:
        raise ValueError(f"weights {tuple(weights.shape)} and values {tuple(values.shape)} differ in shape")
    return (weights * values).sum()


def gan_discriminator_loss(real_prob: Tensor, fake_prob: Tensor, *, eps: float = 1e-12) -> Tensor:
    """Negative of eq. (1): −(E_data log D(S) + E_G log(1 − D(S))).

    Direction: D *maximizes* (1), so this loss is *minimized*. D(S) ∈ (0, 1) is the probability that
    S is real.
    """
    return -(torch.log(real_prob + eps).mean() + torch.log1p(-fake_prob + eps).mean())


def gan_generator_objective(fake_prob: Tensor, *, eps: float = 1e-12) -> Tensor:
    """Eq. (2): E_G log(1 − D(S)). Direction: the generator *minimizes* it."""
    return torch.log1p(-fake_prob + eps).mean()


def check_margin(margin: float) -> float:
    """Validate the EBGAN margin m > 0 (a non-positive margin switches the fake term off)."""
    if isinstance(margin, bool) or not isinstance(margin, (int, float, torch.Tensor)):
        raise ValueError(f"margin must be a positive finite number, got {margin!r}")
    m = float(margin)
    if not m > 0 or m != m or m == float("inf"):
        raise ValueError(f"margin must be a positive finite number, got {margin!r}")
    return m


def ebgan_discriminator_loss(
    real_energy: Tensor,
    fake_energy: Tensor,
    *,
    margin: float,
    real_weights: Tensor | None = None,
    fake_weights: Tensor | None = None,
) -> Tensor:
    """Eq. (3): E_data D(S) + E_G [m − D(S)]^+.

    Direction: D *minimizes* it — real energies go down, fake energies go up until they reach the
    margin m, after which a fake sample contributes nothing ([x]^+ = max(x, 0)). Optional weights
    (summing to one) turn the sample means into exact expectations.
    """
    m = check_margin(margin)
    return _weighted_mean(real_energy, real_weights) + _weighted_mean(
        torch.clamp(m - fake_energy, min=0.0), fake_weights
    )


def ebgan_generator_objective(
    fake_energy: Tensor,
    fake_log_prob: Tensor,
    *,
    entropy_weight: float = 1.0,
    weights: Tensor | None = None,
) -> Tensor:
    """Eq. (4) with ψ(p_G) = −w·H(p_G): E_G[D(S) + w·log p_G(S)] (w = 1 is the paper's choice).

    Direction: the generator *minimizes* it: low energy, high entropy. With exact weights
    p_G(S) (and ``fake_log_prob`` differentiable) this is J of eq. (9); as a sample mean it is an
    estimate of J's *value* — its gradient needs the score-function surrogate below.
    """
    return _weighted_mean(fake_energy + entropy_weight * fake_log_prob, weights)


def policy_gradient_surrogate(step_log_probs: Tensor, q_values: Tensor) -> Tensor:
    """Surrogate whose gradient is the Monte-Carlo estimate of eq. (14).

    ``step_log_probs`` (N, T): log p_G(s_t | s_1 … s_{t−1}) with gradient; ``q_values`` (N, T): the
    estimates of Q(s_1 … s_t) = E[D(S) + w·log p_G(S) | s_1 … s_t] (detached here). The surrogate
    is mean_n Σ_t log p_G(s_t | h_t)·Q_t; its gradient estimates ∇E_G[D + w log p_G].
    Direction: the generator *minimizes* it (gradient descent on eq. 4).
    """
    if step_log_probs.shape != q_values.shape:
        raise ValueError(
            f"step_log_probs {tuple(step_log_probs.shape)} and q_values {tuple(q_values.shape)} differ"
        )
    return (step_log_probs * q_values.detach()).sum(dim=1).mean()


def maxent_c_step_objective(
    demo_cost: Tensor,
    sample_cost: Tensor,
    *,
    demo_weights: Tensor | None = None,
    sample_weights: Tensor | None = None,
) -> Tensor:
    """Eq. (21) (and (19)): −E_demo c(S) + E_q c(S). Direction: the cost c *maximizes* it.

    Linear in c: for fixed q its supremum is +∞ (errata), so only a gradient step is meaningful.
    Compared with (3), the sign is flipped (maximize vs minimize) and the margin is absent.
    """
    return -_weighted_mean(demo_cost, demo_weights) + _weighted_mean(sample_cost, sample_weights)


def maxent_q_step_objective(
    sample_cost: Tensor, sample_log_prob: Tensor, *, weights: Tensor | None = None
) -> Tensor:
    """Eq. (20): E_q c(S) − H(q) = E_q[c(S) + log q(S)]. Direction: q *minimizes* it.

    Equal to KL(q‖P_c) − log Z (eq. 18); the same functional as eq. (4) with w = 1 and D = c.
    """
    return _weighted_mean(sample_cost + sample_log_prob, weights)
