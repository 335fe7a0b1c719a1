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


# --- the GAN ⇄ IRL family: SeqGAN and GAN-GCL (docs/family.md) ------------------------------------
def seqgan_discriminator_loss(
    real_logits: Tensor,
    fake_logits: Tensor,
    *,
    real_weights: Tensor | None = None,
    fake_weights: Tensor | None = None,
) -> Tensor:
    """Negative of eq. (1) for a classifier D(S) = σ(ℓ(S)) given by its logit ℓ (SeqGAN, Yu et al. 2017).

    −(E_data log σ(ℓ) + E_G log(1 − σ(ℓ))) = E_data softplus(−ℓ) + E_G softplus(ℓ), computed on
    logits so that saturated classifiers stay finite. Direction: D *maximizes* (1), so this loss is
    *minimized*: real logits go up ("real"), fake logits go down. Its minimizer over a free ℓ is
    ℓ* = log p_data − log p_G, i.e. D* = p_data / (p_data + p_G) (claim E13). Shapes: (N,), (M,).
    """
    # log σ(ℓ) = −softplus(−ℓ); log(1 − σ(ℓ)) = −softplus(ℓ)
    real_term = _weighted_mean(torch.nn.functional.softplus(-real_logits), real_weights)
    fake_term = _weighted_mean(torch.nn.functional.softplus(fake_logits), fake_weights)
    return real_term + fake_term


def seqgan_generator_reward(fake_logits: Tensor) -> Tensor:
    """SeqGAN's generator reward: D(S) = σ(ℓ(S)), the classifier's probability of "real", (N,).

    As in SeqGAN's published code the reward is the probability itself on completed sequences, with
    no entropy term; Q of eq. (5)/(14) is its rollout mean. Direction: the generator *maximizes*
    E_G D(S) (equivalently it minimizes E_G[−D(S)], the "energy" −D with entropy weight 0). This is
    not the gradient of eq. (2) E_G log(1 − D); both vanish where D is constant (claims E14, E15).
    """
    return torch.sigmoid(fake_logits)


def gan_gcl_logits(cost: Tensor, log_z: Tensor | float, log_p_g: Tensor) -> Tensor:
    """Logit of the GAN-GCL discriminator (Finn, Christiano, Abbeel & Levine 2016, eq. of §3.2).

    D(S) = (exp(−c(S))/Z) / (exp(−c(S))/Z + p_G(S)), so ℓ(S) = log D − log(1 − D) =
    −c(S) − log Z − log p_G(S). Low cost = realistic (the MaxEnt cost of eq. 8); ``log_p_g`` is the
    exact log p_G(S) of the autoregressive generator (held fixed by the discriminator). Shapes (N,).
    """
    return -cost - log_z - log_p_g


def gan_gcl_discriminator_loss(
    real_cost: Tensor,
    fake_cost: Tensor,
    log_z: Tensor | float,
    *,
    real_log_p_g: Tensor,
    fake_log_p_g: Tensor,
    real_weights: Tensor | None = None,
    fake_weights: Tensor | None = None,
) -> Tensor:
    """GAN-GCL discriminator loss (Finn et al. 2016): log-loss of eq. (1) on D = ẽ/(ẽ + p_G), ẽ = e^{−c}/Z.

    −E_data log D(S) − E_G log(1 − D(S)) with the logits of :func:`gan_gcl_logits`. Direction: the
    cost c and the scalar log Z *minimize* it (real costs go down, fake costs go up, as for the energy
    of eq. 3). ``real_log_p_g`` (N,) and ``fake_log_p_g`` (M,) are log p_G under the current
    generator and should be detached: the generator is not trained through this loss. Its minimizer
    in log Z and its cost gradient are claims E16 and E17.
    """
    real = gan_gcl_logits(real_cost, log_z, real_log_p_g)
    fake = gan_gcl_logits(fake_cost, log_z, fake_log_p_g)
    return seqgan_discriminator_loss(real, fake, real_weights=real_weights, fake_weights=fake_weights)


def gan_gcl_generator_loss(
    fake_cost: Tensor, fake_log_p_g: Tensor, log_z: Tensor | float, *, weights: Tensor | None = None
) -> Tensor:
    """GAN-GCL generator loss E_G[log(1 − D) − log D] = E_G[c(S) + log p_G(S)] + log Z (Finn et al. 2016).

    The per-sequence value is −ℓ(S) = c + log Z + log p_G. Direction: the generator *minimizes* it.
    It is eq. (4) with ψ = −H (w = 1) and D = c, shifted by the constant log Z; with exact weights
    p_G it equals KL(p_G‖P_c) + log Z − log Z_c (claim E18). Shapes (N,).
    """
    return _weighted_mean(fake_cost + fake_log_p_g, weights) + log_z
