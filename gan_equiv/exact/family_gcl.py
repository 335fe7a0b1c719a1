"""GAN-GCL's three claims (Finn, Christiano, Abbeel & Levine 2016) checked exactly: E16, E17, E18.

The discriminator is D = ẽ/(ẽ + p_G), ẽ = e^{−c}/Z, with a linear cost c = θ·f (the MaxEnt cost of
eq. 8) and a learned scalar b = log Z, trained with the log-loss; μ = (p_data + p_G)/2 is the
sampling mixture and μ̃ = (ẽ + p_G)/2 its model version. Derivations: docs/family.md; the
conditions under which each claim is exact: docs/errata.md (entries 8–10).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import logsumexp

from gan_equiv.exact.claim_base import CheckResult, TinyProblem
from gan_equiv.exact.family_common import (
    all_sequences,
    gcl_optimal_log_z,
    generic_policy,
    policy_flat_gradient,
)
from gan_equiv.exact.q_values import exact_policy_gradient
from gan_equiv.losses import gan_gcl_discriminator_loss, gan_gcl_generator_loss, gan_gcl_logits
from gan_equiv.models.energies import LinearEnergy, TabularEnergy
from maxent_il.gibbs import GibbsModel, kl_divergence
from maxent_il.likelihood import log_likelihood_and_gradient


def _setup(problem: TinyProblem, offset: int):
    """(all sequences, c (V^T,), log Z_c, generic policy, its p_G (V^T,))."""
    seqs = all_sequences(problem.space)
    cost = problem.features.costs(problem.theta, problem.space.all_sequences())
    log_zc = GibbsModel(problem.features, problem.theta).log_partition
    policy = generic_policy(problem.space, problem.seed + offset)
    with torch.no_grad():
        p_g = policy.log_prob(seqs).exp().numpy()
    return seqs, cost, log_zc, policy, p_g


def gcl_cost_gradient(problem: TinyProblem, p_g: np.ndarray, log_z: float) -> np.ndarray:
    """∇_θ of ``losses.gan_gcl_discriminator_loss`` (exact weights p_data, p_G; c = θ·f; log Z fixed): (d,).

    Implements the cost gradient of Finn et al.'s discriminator loss; compared with (15) in E17.
    """
    seqs = all_sequences(problem.space)
    energy = LinearEnergy(problem.features, theta=problem.theta)
    c = energy(seqs)
    log_pg = torch.as_tensor(np.log(p_g))
    loss = gan_gcl_discriminator_loss(
        c,
        c,
        torch.tensor(log_z, dtype=torch.float64),
        real_log_p_g=log_pg,
        fake_log_p_g=log_pg,
        real_weights=torch.as_tensor(problem.data_probs),
        fake_weights=torch.as_tensor(p_g),
    )
    (grad,) = torch.autograd.grad(loss, energy.theta)
    return grad.numpy()


def check_e16(problem: TinyProblem) -> CheckResult:
    """E16: the log Z minimizing GAN-GCL's discriminator loss solves E_data[1 − D] = E_G[D], i.e.
    Z* = E_μ[e^{−c}/μ̃*] (Finn et al.'s importance-sampling form, exact as an identity: its
    "proposal density" μ̃* is the model's mixture, not the sampling mixture μ). Z* equals the true
    partition function Z_c = Σ e^{−c} when p_G = P_c (checked here) or P_c = p_data — not in general
    (tests/test_family.py). The first-order condition is the autograd gradient of the public loss.
    """
    _, cost, log_zc, _, p_g = _setup(problem, 16)
    p_d = problem.data_probs
    b = gcl_optimal_log_z(cost, p_d, p_g)
    log_z = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    log_pg = torch.as_tensor(np.log(p_g))
    c_t = torch.as_tensor(cost)
    loss = gan_gcl_discriminator_loss(
        c_t,
        c_t,
        log_z,
        real_log_p_g=log_pg,
        fake_log_p_g=log_pg,
        real_weights=torch.as_tensor(p_d),
        fake_weights=torch.as_tensor(p_g),
    )
    (foc,) = torch.autograd.grad(loss, log_z)
    mu = 0.5 * (p_d + p_g)
    log_mu_model = np.logaddexp(-cost - b, np.log(p_g)) - np.log(2.0)  # log μ̃*
    log_is = float(logsumexp(np.log(mu) - cost - log_mu_model))  # log E_μ[e^{−c}/μ̃*]
    p_c = GibbsModel(problem.features, problem.theta).probabilities()
    b_at_pc = gcl_optimal_log_z(cost, p_d, p_c)
    err = max(abs(float(foc)), abs(log_is - b), abs(b_at_pc - log_zc))
    return CheckResult(
        "E16",
        "GAN-GCL: argmin_Z of the D-loss solves Z = E_μ[e^{−c}/μ̃]; equals Z_c when p_G = P_c",
        "(8); Finn et al. 2016 §3",
        b_at_pc,
        log_zc,
        err,
        1e-10,
    )


def check_e17(problem: TinyProblem) -> CheckResult:
    """E17: at the optimal log Z, ∇_θ of GAN-GCL's discriminator loss is guided cost learning's
    importance-sampled gradient E_data ∇c − Σ_μ w̃ ∇c / Σ_μ w̃ with weights w̃ = e^{−c}/μ̃ held fixed
    (Finn et al.'s claim, an identity); when p_G = P_c (then D ≡ ½) it is exactly −½ × the MaxEnt IRL
    gradient (15): half of EB-SeqGAN's cost step (E7). For a generic p_G it is neither (tests).
    """
    _, cost, _, _, p_g = _setup(problem, 17)
    p_d = problem.data_probs
    all_seqs = problem.space.all_sequences()
    b = gcl_optimal_log_z(cost, p_d, p_g)
    grad = gcl_cost_gradient(problem, p_g, b)
    mu = 0.5 * (p_d + p_g)
    log_mu_model = np.logaddexp(-cost - b, np.log(p_g)) - np.log(2.0)
    log_w = np.log(mu) - cost - log_mu_model  # log(μ·w̃): self-normalized IS over the enumerated μ
    is_weights = np.exp(log_w - logsumexp(log_w))
    guided = problem.data_moments - problem.features.weighted_counts(all_seqs, is_weights)
    p_c = GibbsModel(problem.features, problem.theta).probabilities()
    b_c = gcl_optimal_log_z(cost, p_d, p_c)
    grad_at_pc = gcl_cost_gradient(problem, p_c, b_c)
    _, grad15 = log_likelihood_and_gradient(problem.features, problem.theta, problem.data_moments)
    err = max(float(np.abs(grad - guided).max()), float(np.abs(grad_at_pc + 0.5 * grad15).max()))
    return CheckResult(
        "E17",
        "GAN-GCL: at Z*, ∇_θ D-loss = IS gradient of guided cost learning; = −½·(15) when p_G = P_c",
        "(15), (21); Finn et al. 2016 §3",
        float(np.linalg.norm(grad_at_pc)),
        0.5 * float(np.linalg.norm(grad15)),
        err,
        1e-10,
    )


def check_e18(problem: TinyProblem) -> CheckResult:
    """E18: GAN-GCL's generator loss E_G[log(1 − D) − log D] = E_G[c + log p_G] + log Z =
    KL(p_G‖P_c) + log Z − log Z_c for every p_G and Z (eq. 4 with w = 1, eq. 18); its policy gradient
    with the per-sequence value held fixed is eq. (14) with energy c and w = 1, = ∇KL(p_G‖P_c)."""
    seqs, cost, log_zc, policy, p_g = _setup(problem, 18)
    b = gcl_optimal_log_z(cost, problem.data_probs, p_g)
    log_pg = np.log(p_g)
    c_t, lp_t, w_t = torch.as_tensor(cost), torch.as_tensor(log_pg), torch.as_tensor(p_g)
    value = float(gan_gcl_generator_loss(c_t, lp_t, b, weights=w_t))
    reference = kl_divergence(p_g, problem.features, problem.theta) + b - log_zc
    logit = gan_gcl_logits(c_t, b, lp_t)
    by_d = float(
        (w_t * (torch.nn.functional.logsigmoid(-logit) - torch.nn.functional.logsigmoid(logit))).sum()
    )
    fixed = TabularEnergy(problem.space.n_items, problem.space.horizon, values=(-logit).numpy())
    grad_fixed = exact_policy_gradient(policy, fixed, entropy_weight=0.0)  # reward −ℓ held fixed
    energy = LinearEnergy(problem.features, theta=problem.theta)
    grad_14 = exact_policy_gradient(policy, energy, entropy_weight=1.0)  # eq. (14), D = c, w = 1
    log_p = policy.log_prob(seqs)
    kl_t = (log_p.exp() * (c_t + log_p)).sum()  # KL(p_G‖P_c) − log Z_c, differentiable
    grad_kl = policy_flat_gradient(kl_t, policy)
    scale = max(1.0, float(grad_kl.abs().max()))
    err = max(
        abs(value - reference),
        abs(by_d - reference),
        float((grad_fixed - grad_kl).abs().max()) / scale,
        float((grad_14 - grad_kl).abs().max()) / scale,
    )
    return CheckResult(
        "E18",
        "GAN-GCL: E_G[log(1−D) − log D] = KL(p_G‖P_c) + log Z − log Z_c; gradient = (14) with w = 1",
        "(4), (14), (18)",
        value,
        reference,
        err,
        1e-10,
    )
