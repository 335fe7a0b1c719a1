"""The IRL-side claims E1–E6 and E12 as executable checks on tiny exact problems (maxent_il only).

E1–E3: the primal (7), the Gibbs form (8), the log-likelihood gradient (15) and moment matching (6);
E4: KL(q‖P) = E_q c − H(q) + log Z (eqs. 18, 20); E5, E6: the approximate gradient (16) and the
two-step procedure (20)/(21); E12: soft Bellman = enumeration (eq. 8). Derivations: docs/derivations.md.
"""

from __future__ import annotations

import numpy as np

from gan_equiv.exact.claim_base import Check, CheckResult, TinyProblem, max_abs_diff
from maxent_il.divergences import entropy
from maxent_il.dynamic import soft_bellman
from maxent_il.gibbs import GibbsModel, gibbs_stats, kl_divergence
from maxent_il.gradient_gap import gradient_gap_bound
from maxent_il.likelihood import log_likelihood_and_gradient
from maxent_il.primal import solve_primal
from maxent_il.solver import fit_maxent
from maxent_il.two_step import approximate_gradient, exact_ll_ascent, two_step


def check_e1(problem: TinyProblem) -> CheckResult:
    """E1: the primal (7) solved over the simplex equals the Gibbs form (8) of the dual fit."""
    fit = fit_maxent(problem.features, target_moments=problem.data_moments, gtol=1e-10)
    dual = GibbsModel(problem.features, fit.theta).probabilities()
    primal = solve_primal(problem.features, problem.data_moments)
    return CheckResult(
        "E1",
        "primal (7) solution = Gibbs form (8) of the dual θ*; entropies equal",
        "(7), (8)",
        primal.entropy,
        fit.entropy,
        max(max_abs_diff(primal.probabilities, dual), abs(primal.entropy - fit.entropy)),
        1e-5,
    )


def check_e2(problem: TinyProblem, *, step: float = 1e-5) -> CheckResult:
    """E2: the LL gradient of eq. (15) equals central finite differences of the exact LL."""
    target = problem.data_moments
    _, grad = log_likelihood_and_gradient(problem.features, problem.theta, target)
    eye = np.eye(problem.features.dim) * step
    fd = np.array(
        [
            (
                log_likelihood_and_gradient(problem.features, problem.theta + e, target)[0]
                - log_likelihood_and_gradient(problem.features, problem.theta - e, target)[0]
            )
            / (2 * step)
            for e in eye
        ]
    )  # loop over d coordinates (not over sequences)
    return CheckResult(
        "E2",
        "∇LL = −E_demo f + E_P f equals finite differences of exact LL",
        "(15)",
        float(np.linalg.norm(grad)),
        float(np.linalg.norm(fd)),
        max_abs_diff(grad, fd),
        1e-6,
    )


def check_e3(problem: TinyProblem) -> CheckResult:
    """E3: at the unregularized dual optimum (interior case) the moments match (6)."""
    fit = fit_maxent(problem.features, target_moments=problem.data_moments, gtol=1e-10)
    return CheckResult(
        "E3",
        "E_P f = E_demo f at the dual optimum (moment matching)",
        "(6), (15)",
        float(np.abs(fit.model_moments).sum()),
        float(np.abs(fit.demo_moments).sum()),
        fit.moment_gap,
        1e-8,
    )


def check_e4(problem: TinyProblem, *, seed: int = 1) -> CheckResult:
    """E4: KL(q‖P) = E_q c − H(q) + log Z, KL ≥ 0, and KL(P‖P) = 0 (eqs. 18, 20)."""
    rng = np.random.default_rng(seed)
    q = rng.dirichlet(np.ones(problem.space.size))
    stats = gibbs_stats(problem.features, problem.theta)
    costs = problem.features.costs(problem.theta, problem.space.all_sequences())
    identity = float(q @ costs) - entropy(q) + stats.log_partition
    kl = kl_divergence(q, problem.features, problem.theta)
    p = GibbsModel(problem.features, problem.theta).probabilities()
    kl_self = kl_divergence(p, problem.features, problem.theta)
    err = max(abs(identity - kl), abs(kl_self), max(0.0, -kl))
    return CheckResult(
        "E4", "KL(q‖P) = E_q c − H(q) + log Z ≥ 0, zero at q = P", "(18), (20)", identity, kl, err, 1e-10
    )


def check_e5(problem: TinyProblem, *, seed: int = 2) -> CheckResult:
    """E5: the approximate gradient (16) equals (15) at q = P, and for q ≠ P its gap obeys
    ‖(16) − (15)‖_∞ ≤ ‖f‖_∞·2TV(q, P) ≤ ‖f‖_∞·√(2 KL(q‖P)) (Pinsker)."""
    target = problem.data_moments
    p = GibbsModel(problem.features, problem.theta).probabilities()
    _, exact = log_likelihood_and_gradient(problem.features, problem.theta, target)
    at_p = max_abs_diff(approximate_gradient(problem.features, problem.theta, target, p), exact)
    q = np.random.default_rng(seed).dirichlet(np.ones(problem.space.size))
    gap = gradient_gap_bound(problem.features, q, problem.theta)
    violation = max(0.0, gap.gap - gap.tv_bound, gap.tv_bound - gap.pinsker_bound)
    return CheckResult(
        "E5",
        "(16) = (15) at q = P; gap ≤ ‖f‖∞·2TV ≤ ‖f‖∞·√(2KL) otherwise",
        "(15), (16)",
        gap.gap,
        gap.pinsker_bound,
        max(at_p, violation),
        1e-10,
    )


def check_e6(problem: TinyProblem, *, n_iters: int = 20, lr: float = 0.5) -> CheckResult:
    """E6: the two-step procedure (20)/(21) with an exact q-step reproduces gradient ascent on the
    exact log-likelihood (15), iterate by iterate."""
    target = problem.data_moments
    steps = two_step(problem.features, demo_moments=target, n_iters=n_iters, lr=lr, q_step="exact")
    ascent = exact_ll_ascent(problem.features, target, n_iters=n_iters, lr=lr)
    err = max_abs_diff(np.asarray(steps.thetas), np.asarray(ascent.thetas))
    return CheckResult(
        "E6",
        "two-step with exact q-step = exact LL gradient ascent, every iterate",
        "(15), (20), (21)",
        float(steps.exact_ll[-1]),
        float(ascent.log_likelihoods[-1]),
        err,
        1e-10,
    )


def check_e12(problem: TinyProblem) -> CheckResult:
    """E12: soft Bellman conditionals multiply back to P_θ and W_1 = log Z (DP = enumeration)."""
    dp = soft_bellman(problem.features, problem.theta)
    model = GibbsModel(problem.features, problem.theta)
    seqs = problem.space.all_sequences()
    err = max(
        max_abs_diff(dp.log_prob(seqs), model.log_prob(seqs)),
        abs(dp.log_partition - model.log_partition),
        max_abs_diff(dp.expected_features, model.expected_features),
    )
    return CheckResult(
        "E12",
        "Π_t π_t(s_t|h_t) = P_θ(S); V(root) = log Z; DP moments = enumeration",
        "(8)",
        dp.log_partition,
        model.log_partition,
        err,
        1e-10,
    )


#: The IRL-side checks, in claim order.
IRL_CHECKS: tuple[Check, ...] = (check_e1, check_e2, check_e3, check_e4, check_e5, check_e6, check_e12)
