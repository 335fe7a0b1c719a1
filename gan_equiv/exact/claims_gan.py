"""The GAN-side claims E7–E11 as executable checks: EB-SeqGAN's losses and gradients against exact IRL.

E7: the EBGAN D-loss (3) is the c-step (21); E8: the generator objective (4) is the q-step (20);
E9: the gradient lines (9)–(14); E10: the Monte-Carlo estimator of (14) is unbiased; E11: the
adversarial loop converges to the MaxEnt IRL fit. Derivations: docs/derivations.md.
"""

from __future__ import annotations

import numpy as np
import torch

from gan_equiv.checks import choice
from gan_equiv.exact.claim_base import Check, CheckResult, TinyProblem, max_abs_diff
from gan_equiv.exact.gradients import gradient_lines
from gan_equiv.exact.policy_gradients import mc_policy_gradient
from gan_equiv.exact.q_values import exact_policy_gradient
from gan_equiv.losses import ebgan_discriminator_loss, ebgan_generator_objective
from gan_equiv.models.energies import LinearEnergy
from gan_equiv.models.policies import GRUPolicy, TabularPolicy
from maxent_il.divergences import exact_kl
from maxent_il.dynamic import soft_bellman
from maxent_il.features import StateActionFeatures
from maxent_il.gibbs import GibbsModel, gibbs_stats, kl_divergence
from maxent_il.solver import fit_maxent


def _exact_tabular_policy(features: StateActionFeatures, theta: np.ndarray) -> TabularPolicy:
    """The tabular generator whose conditionals are those of P_θ (the minimizer of eq. 20)."""
    dp = soft_bellman(features, theta)
    policy = TabularPolicy(features.space.n_items, features.space.horizon, dtype=torch.float64)
    return policy.set_conditionals(dp.next_item_log_probs)


def check_e7(problem: TinyProblem, *, margin: float = 1e3) -> CheckResult:
    """E7: ∇_θ of the EBGAN D-loss (3) = −∇ of the IL c-step objective (21) while all fake D < m."""
    seqs = torch.as_tensor(problem.space.all_sequences())
    q = GibbsModel(problem.features, problem.theta * 0.5).probabilities()  # some generator q
    energy = LinearEnergy(problem.features, theta=problem.theta)
    values = energy(seqs)
    if float(values.detach().max()) >= margin:
        raise ValueError(f"margin {margin} binds (max energy {float(values.detach().max()):.3g}); raise it")
    loss = ebgan_discriminator_loss(
        values,
        values,
        margin=margin,
        real_weights=torch.as_tensor(problem.data_probs),
        fake_weights=torch.as_tensor(q),
    )
    (grad_d,) = torch.autograd.grad(loss, energy.theta)
    all_seqs = problem.space.all_sequences()
    c_step_grad = -problem.data_moments + problem.features.weighted_counts(all_seqs, q)  # ∇ of (21)
    return CheckResult(
        "E7",
        "gradient of EBGAN D-loss (3) = −gradient of c-step (21) while fake energies < m",
        "(3), (21)",
        float(grad_d.norm()),
        float(np.linalg.norm(c_step_grad)),
        max_abs_diff(grad_d.numpy(), -c_step_grad),
        1e-10,
    )


def check_e8(problem: TinyProblem) -> CheckResult:
    """E8: the generator objective (4) with ψ = −H equals the q-objective (20) = KL(q‖P_D) − log Z."""
    gen = torch.Generator().manual_seed(problem.seed)
    policy = TabularPolicy(problem.space.n_items, problem.space.horizon, init_scale=1.0, generator=gen)
    energy = LinearEnergy(problem.features, theta=problem.theta)
    seqs = torch.as_tensor(problem.space.all_sequences())
    with torch.no_grad():
        log_q = policy.log_prob(seqs)
        obj4 = float(ebgan_generator_objective(energy(seqs), log_q, entropy_weight=1.0, weights=log_q.exp()))
    q = log_q.exp().numpy()
    reference = (
        kl_divergence(q, problem.features, problem.theta)
        - gibbs_stats(problem.features, problem.theta).log_partition
    )
    return CheckResult(
        "E8",
        "E_pG[D] − H(p_G) (eq. 4, ψ = −H) = KL(p_G‖P_D) − log Z (eq. 20)",
        "(4), (18), (20)",
        obj4,
        reference,
        abs(obj4 - reference),
        1e-10,
    )


def check_e9(problem: TinyProblem) -> CheckResult:
    """E9: every line of (10)–(14) equals the autograd gradient (9) of E_pG[D + log p_G] (GRU policy)."""
    torch.manual_seed(problem.seed)
    policy = GRUPolicy(
        problem.space.n_items, problem.space.horizon, embed_dim=4, hidden_dim=6, dtype=torch.float64
    )
    lines = gradient_lines(policy, LinearEnergy(problem.features, theta=problem.theta))
    return CheckResult(
        "E9",
        "lines (10)–(14) of the generator gradient equal autograd of (9)",
        "(9)–(14)",
        float(lines.line14.norm()),
        float(lines.line9.norm()),
        lines.max_line_discrepancy() / lines.scale(),
        1e-10,
    )


def check_e10(
    problem: TinyProblem, *, n_estimates: int = 100, n_samples: int = 64, n_rollouts: int = 4, z: float = 5.0
) -> CheckResult:
    """E10: the Monte-Carlo estimator of (14) (K rollouts per prefix) is unbiased: over independent
    estimates, every coordinate of the mean lies within z standard errors of the exact gradient.
    ``value`` is the largest |z|-score and ``tol`` is z."""
    gen = torch.Generator().manual_seed(problem.seed)
    policy = TabularPolicy(problem.space.n_items, problem.space.horizon, init_scale=1.0, generator=gen)
    energy = LinearEnergy(problem.features, theta=problem.theta)
    exact = exact_policy_gradient(policy, energy)
    estimates = torch.stack(
        [
            mc_policy_gradient(policy, energy, n_samples, n_rollouts=n_rollouts, generator=gen)
            for _ in range(n_estimates)
        ]
    )  # (n_estimates, n_params): independent repetitions, not a loop over sequences
    mean = estimates.mean(dim=0)
    stderr = estimates.std(dim=0) / n_estimates**0.5
    varying = stderr > 1e-12
    zscores = ((mean - exact).abs()[varying] / stderr[varying]).max()
    constant_err = float((mean - exact).abs()[~varying].max()) if (~varying).any() else 0.0
    worst = max(float(zscores), constant_err / 1e-10 * z)
    return CheckResult(
        "E10",
        "MC estimator of (14) with K rollouts is unbiased (max z-score over coordinates)",
        "(14)",
        worst,
        0.0,
        worst,
        z,
    )


def check_e11(
    problem: TinyProblem,
    *,
    margin: float = 1e3,
    lr: float = 0.05,
    optimizer: str = "adam",
    max_rounds: int = 5000,
    tol: float = 1e-6,
) -> CheckResult:
    """E11: EB-SeqGAN with D = θ·f, an exact generator step and a non-binding margin converges to
    the MaxEnt IRL fit: KL(P_θ*‖p_G) below ``tol``.

    Each round: G-step — p_G ← argmin of (4) with ψ = −H, i.e. the soft Bellman policy of P_θ
    (eq. 20); D-step — one ``optimizer`` step (Adam, as in the trainer, or plain SGD) on the exact
    D-loss (3) over the enumerated space, whose gradient is minus the LL gradient (15) (claim E7).
    """
    target = fit_maxent(problem.features, target_moments=problem.data_moments, gtol=1e-11)
    log_p_star = GibbsModel(problem.features, target.theta).all_log_probs()  # (V^T,)
    seqs = torch.as_tensor(problem.space.all_sequences())
    energy = LinearEnergy(problem.features)
    optimizer = choice(optimizer, "optimizer", ("adam", "sgd"))
    opt_cls = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
    d_optimizer = opt_cls(energy.parameters(), lr=lr)
    data_w = torch.as_tensor(problem.data_probs)
    kl = float("inf")
    for _ in range(max_rounds):  # adversarial rounds (not a loop over sequences)
        policy = _exact_tabular_policy(problem.features, energy.theta.detach().numpy())
        with torch.no_grad():
            log_p_g = policy.log_prob(seqs).double()  # (V^T,)
        kl = exact_kl(log_p_star, log_p_g)  # KL(P_θ*‖p_G)
        if kl < tol:
            break
        values = energy(seqs)
        if float(values.detach().max()) >= margin:
            raise RuntimeError("the margin started to bind; E11 assumes it never does")
        loss = ebgan_discriminator_loss(
            values, values, margin=margin, real_weights=data_w, fake_weights=log_p_g.exp()
        )
        d_optimizer.zero_grad()
        loss.backward()
        d_optimizer.step()
    return CheckResult(
        "E11",
        "EB-SeqGAN (linear D, exact G-step, non-binding m) converges to the MaxEnt IRL fit",
        "(3), (4), (8), (15)",
        kl,
        0.0,
        kl,
        tol,
    )


#: The GAN-side checks, in claim order.
GAN_CHECKS: tuple[Check, ...] = (check_e7, check_e8, check_e9, check_e10, check_e11)
