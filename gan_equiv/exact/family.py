"""The GAN ⇄ IRL family's claims E13 onward (docs/family.md), each checked exactly by enumeration.

SeqGAN (Yu et al. 2017), here: E13 — the optimal classifier of eq. (1) is p_data/(p_data + p_G);
E14 — at it, the minimax value is 2·JS(p_data‖p_G) − log 4, the generator's gradient of (2) with D*
held fixed is ∇2·JS, and both vanish at the fixed point p_G = p_data; E15 — SeqGAN's reward D* is
not a MaxEnt cost (constant ½ at the fixed point), though its logit carries one.
GAN-GCL (Finn, Christiano, Abbeel & Levine 2016), in :mod:`gan_equiv.exact.family_gcl`: E16 optimal
log Z, E17 cost gradient, E18 generator loss. The analytic-entropy generator estimator, in
:mod:`gan_equiv.exact.family_estimator`: E19. :data:`FAMILY_CHECKS` lists them in order.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import expit, softmax

from gan_equiv.exact.claim_base import Check, CheckResult, TinyProblem
from gan_equiv.exact.family_common import (
    all_sequences,
    generic_policy,
    js_divergence,
    policy_flat_gradient,
    seqgan_optimal_logits,
    tabular_policy_of,
)
from gan_equiv.exact.family_estimator import check_e19
from gan_equiv.exact.family_gcl import check_e16, check_e17, check_e18
from gan_equiv.exact.q_values import exact_policy_gradient
from gan_equiv.losses import seqgan_discriminator_loss
from gan_equiv.models.energies import TabularEnergy

LOG4 = math.log(4.0)


def _generic_p_g(problem: TinyProblem, offset: int):
    policy = generic_policy(problem.space, problem.seed + offset)
    with torch.no_grad():
        p_g = policy.log_prob(all_sequences(problem.space)).exp().numpy()
    return policy, p_g


def check_e13(problem: TinyProblem) -> CheckResult:
    """E13: the minimizer of the SeqGAN log-loss (negated eq. 1) over a free logit ℓ(S) is
    ℓ* = log p_data − log p_G, i.e. D* = p_data/(p_data + p_G); the loss there is log 4 − 2·JS.

    First-order condition: the autograd gradient of ``losses.seqgan_discriminator_loss`` (exact
    weights) vanishes at ℓ*; the loss is separable with autograd Hessian diagonal
    (p_data + p_G)·D*(1 − D*) > 0, so ℓ* is its unique global minimizer; its value is compared with
    JS computed independently.
    """
    p_d = problem.data_probs
    _, p_g = _generic_p_g(problem, 13)
    logits = torch.tensor(seqgan_optimal_logits(p_d, p_g), requires_grad=True)
    loss = seqgan_discriminator_loss(
        logits, logits, real_weights=torch.as_tensor(p_d), fake_weights=torch.as_tensor(p_g)
    )
    (grad,) = torch.autograd.grad(loss, logits, create_graph=True)
    (hess_diag,) = torch.autograd.grad(grad.sum(), logits)  # separable: the Hessian is diagonal
    d_star = expit(logits.detach().numpy())
    closed_hess = (p_d + p_g) * d_star * (1 - d_star)
    reference = LOG4 - 2 * js_divergence(p_d, p_g)
    err = max(
        float(grad.detach().abs().max()),
        float(np.abs(d_star - p_d / (p_d + p_g)).max()),
        float(np.abs(hess_diag.numpy() - closed_hess).max()),
        0.0 if float(hess_diag.min()) > 0 else 1.0,  # strict convexity
        abs(float(loss.detach()) - reference),
    )
    return CheckResult(
        "E13",
        "SeqGAN: argmin of the log-loss (1) is D* = p_data/(p_data+p_G); loss there = log 4 − 2·JS",
        "(1)",
        float(loss.detach()),
        reference,
        err,
        1e-12,
    )


def check_e14(problem: TinyProblem) -> CheckResult:
    """E14: at D*, the minimax value of (1)–(2) is 2·JS(p_data‖p_G) − log 4; the generator's gradient
    of (2), E_G log(1 − D*) with D* held fixed (policy gradient, eq. 14 with energy log(1 − D*), w = 0),
    equals ∇2·JS (envelope theorem); at the fixed point p_G = p_data, D* ≡ ½ and the gradients of
    (2) and of SeqGAN's reward E_G D* both vanish."""
    p_d = problem.data_probs
    space = problem.space
    seqs = all_sequences(space)
    policy, p_g = _generic_p_g(problem, 14)
    d_star = p_d / (p_d + p_g)
    value = float(p_d @ np.log(d_star) + p_g @ np.log1p(-d_star))  # max_D of eq. (1)'s objective
    reference = 2 * js_divergence(p_d, p_g) - LOG4
    log1m = TabularEnergy(space.n_items, space.horizon, values=np.log1p(-d_star))
    grad_eq2 = exact_policy_gradient(policy, log1m, entropy_weight=0.0)
    js = js_divergence(torch.as_tensor(p_d), policy.log_prob(seqs).exp())
    grad_js = policy_flat_gradient(2 * js, policy)
    scale = max(1.0, float(grad_js.abs().max()))
    # the fixed point p_G = p_data
    at_data = tabular_policy_of(p_d, space.n_items, space.horizon)
    with torch.no_grad():
        p_fixed = at_data.log_prob(seqs).exp().numpy()
    d_fixed = p_d / (p_d + p_fixed)
    reward = TabularEnergy(space.n_items, space.horizon, values=-d_fixed)  # SeqGAN's code: reward D
    grad_reward = exact_policy_gradient(at_data, reward, entropy_weight=0.0)
    js_fixed = js_divergence(torch.as_tensor(p_d), at_data.log_prob(seqs).exp())
    grad_js_fixed = policy_flat_gradient(2 * js_fixed, at_data)
    err = max(
        abs(value - reference),
        float((grad_eq2 - grad_js).abs().max()) / scale,
        float(np.abs(d_fixed - 0.5).max()),
        float(grad_reward.abs().max()),
        float(grad_js_fixed.abs().max()),
    )
    return CheckResult(
        "E14",
        "SeqGAN at D*: value = 2·JS − log 4, ∇(2) with D* fixed = ∇2·JS, zero at p_G = p_data",
        "(1), (2), (14)",
        value,
        reference,
        err,
        1e-10,
    )


def check_e15(problem: TinyProblem) -> CheckResult:
    """E15: SeqGAN's reward is not a MaxEnt IRL cost. At its fixed point p_G = p_data the reward
    D* ≡ ½ is constant, so the MaxEnt generator step (20) with cost −D* (w = 1) returns the uniform
    distribution, not p_data: ``value`` = KL(p_data‖P_{−D*}) = log V^T − H(p_data) > 0. What holds:
    the cost recovered from the *logit* by GAN-GCL's decomposition, c = −ℓ* − log p_G = −log p_data,
    is a MaxEnt cost whose Gibbs distribution (8) is p_data exactly, at any p_G (``reference`` = 0).
    ``error`` includes a unit penalty if p_data is uniform (then there is nothing to miss).
    """
    p_d = problem.data_probs
    space = problem.space
    at_data = tabular_policy_of(p_d, space.n_items, space.horizon)
    with torch.no_grad():
        p_fixed = at_data.log_prob(all_sequences(space)).exp().numpy()
    d_fixed = p_d / (p_d + p_fixed)
    best_response = softmax(d_fixed)  # argmin_q E_q[−D*] − H(q) = exp(D*)/Z (eqs. 8, 20)
    miss = float(p_d @ (np.log(p_d) - np.log(best_response)))
    uniform_miss = math.log(space.size) + float(p_d @ np.log(p_d))  # log V^T − H(p_data)
    _, p_g = _generic_p_g(problem, 15)
    recovered_cost = -seqgan_optimal_logits(p_d, p_g) - np.log(p_g)  # = −log p_data
    gibbs = softmax(-recovered_cost)
    err = max(
        float(np.abs(d_fixed - 0.5).max()),
        abs(miss - uniform_miss),
        float(np.abs(gibbs - p_d).max()),
        1.0 if uniform_miss <= 1e-12 else 0.0,
    )
    return CheckResult(
        "E15",
        "SeqGAN's reward D* ≡ ½ at p_G = p_data (MaxEnt step → uniform); −logit − log p_G is a MaxEnt cost",
        "(1), (8), (20)",
        miss,
        float(np.abs(gibbs - p_d).max()),
        err,
        1e-12,
    )


#: The family's checks in order (E13 …); the registry takes them as ``claim_registry(..., *FAMILY_CHECKS)``.
FAMILY_CHECKS: tuple[Check, ...] = (
    check_e13,
    check_e14,
    check_e15,
    check_e16,
    check_e17,
    check_e18,
    check_e19,
)
