"""The paper's claims E1–E12 (DESIGN §3) as executable checks on tiny exact problems.

Each ``check_eN(problem, ...)`` computes one quantity two ways — an exact reference and the route
the paper describes — and returns a :class:`CheckResult`. ``run_all_checks`` runs them all on a
problem; ``python -m gan_equiv verify`` runs them on a few seeded problems and prints a table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from maxent_il.dynamic import soft_bellman
from maxent_il.features import StateActionFeatures
from maxent_il.gibbs import GibbsModel, entropy, gibbs_stats, kl_divergence
from maxent_il.likelihood import log_likelihood_and_gradient
from maxent_il.primal import solve_primal
from maxent_il.solver import fit_maxent
from maxent_il.space import SequenceSpace


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one claim check.

    Attributes:
        name: claim id, e.g. ``"E7"``.
        claim: one line saying what is checked.
        equation: the paper equations involved.
        value: the quantity by the paper's route (a scalar summary, e.g. a norm).
        reference: the exact reference for ``value``.
        error: the discrepancy that is compared with ``tol``.
        tol: the tolerance.
        passed: ``error <= tol``.
    """

    name: str
    claim: str
    equation: str
    value: float
    reference: float
    error: float
    tol: float

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.error) and self.error <= self.tol)


@dataclass(frozen=True)
class TinyProblem:
    """A tiny exact problem: features, a data distribution over all V^T sequences, a θ to probe.

    Attributes:
        features: state-action features over the space.
        data_probs: p_data over all V^T sequences (index order), full support (interior case).
        theta: a generic cost vector (used where a claim needs a θ that is not optimal).
        seed: the seed it was built from.
    """

    features: StateActionFeatures
    data_probs: np.ndarray
    theta: np.ndarray
    seed: int

    @property
    def space(self) -> SequenceSpace:
        return self.features.space

    @property
    def data_moments(self) -> np.ndarray:
        """E_data f, shape (d,)."""
        return self.features.weighted_counts(self.space.all_sequences(), self.data_probs)


def make_tiny_problem(
    n_items: int = 3, horizon: int = 3, *, state: str = "last", seed: int = 0, scale: float = 1.0
) -> TinyProblem:
    """A seeded tiny problem whose data distribution is Dirichlet(1) over the V^T sequences."""
    rng = np.random.default_rng(seed)
    space = SequenceSpace(n_items, horizon)
    features = StateActionFeatures(space, state)  # type: ignore[arg-type]
    data = rng.dirichlet(np.ones(space.size))
    data = np.maximum(data, 1e-4)
    theta = rng.normal(scale=scale, size=features.dim)
    return TinyProblem(features, data / data.sum(), theta, seed)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


# --- maxent_il claims ----------------------------------------------------------------------------
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
        max(_rel(primal.probabilities, dual), abs(primal.entropy - fit.entropy)),
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
        _rel(grad, fd),
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


def check_e12(problem: TinyProblem) -> CheckResult:
    """E12: soft Bellman conditionals multiply back to P_θ and W_1 = log Z (DP = enumeration)."""
    dp = soft_bellman(problem.features, problem.theta)
    model = GibbsModel(problem.features, problem.theta)
    seqs = problem.space.all_sequences()
    err = max(
        _rel(dp.log_prob(seqs), model.log_prob(seqs)),
        abs(dp.log_partition - model.log_partition),
        _rel(dp.expected_features, model.expected_features),
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


# --- EBGAN ⇄ IL claims ---------------------------------------------------------------------------
def _exact_tabular_policy(features: StateActionFeatures, theta: np.ndarray):
    """The tabular generator whose conditionals are those of P_θ (the minimizer of eq. 20)."""
    from gan_equiv.models.policies import TabularPolicy

    dp = soft_bellman(features, theta)
    policy = TabularPolicy(features.space.n_items, features.space.horizon, dtype=torch.float64)
    return policy.set_conditionals(dp.next_item_log_probs)


def check_e7(problem: TinyProblem, *, margin: float = 1e3) -> CheckResult:
    """E7: ∇_θ of the EBGAN D-loss (3) = −∇ of the IL c-step objective (21) while all fake D < m."""
    from gan_equiv.losses import ebgan_discriminator_loss
    from gan_equiv.models.energies import LinearEnergy

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
        _rel(grad_d.numpy(), -c_step_grad),
        1e-10,
    )


def check_e8(problem: TinyProblem) -> CheckResult:
    """E8: the generator objective (4) with ψ = −H equals the q-objective (20) = KL(q‖P_D) − log Z."""
    from gan_equiv.losses import ebgan_generator_objective
    from gan_equiv.models.energies import LinearEnergy
    from gan_equiv.models.policies import TabularPolicy

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
    from gan_equiv.losses import ebgan_discriminator_loss
    from gan_equiv.models.energies import LinearEnergy

    target = fit_maxent(problem.features, target_moments=problem.data_moments, gtol=1e-11)
    p_star = GibbsModel(problem.features, target.theta).probabilities()
    seqs = torch.as_tensor(problem.space.all_sequences())
    energy = LinearEnergy(problem.features)
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"unknown optimizer {optimizer!r}; choose 'adam' or 'sgd'")
    opt_cls = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
    d_optimizer = opt_cls(energy.parameters(), lr=lr)
    data_w = torch.as_tensor(problem.data_probs)
    kl = float("inf")
    for _ in range(max_rounds):  # adversarial rounds (not a loop over sequences)
        policy = _exact_tabular_policy(problem.features, energy.theta.detach().numpy())
        with torch.no_grad():
            p_g = policy.log_prob(seqs).exp()
        kl = float((torch.as_tensor(p_star) * (torch.log(torch.as_tensor(p_star)) - torch.log(p_g))).sum())
        if kl < tol:
            break
        values = energy(seqs)
        if float(values.detach().max()) >= margin:
            raise RuntimeError("the margin started to bind; E11 assumes it never does")
        loss = ebgan_discriminator_loss(values, values, margin=margin, real_weights=data_w, fake_weights=p_g)
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


def check_e5(problem: TinyProblem, *, seed: int = 2) -> CheckResult:
    """E5: the approximate gradient (16) equals (15) at q = P, and for q ≠ P its gap obeys
    ‖(16) − (15)‖_∞ ≤ ‖f‖_∞·2TV(q, P) ≤ ‖f‖_∞·√(2 KL(q‖P)) (Pinsker)."""
    from maxent_il.two_step import approximate_gradient, gradient_gap_bound

    target = problem.data_moments
    p = GibbsModel(problem.features, problem.theta).probabilities()
    _, exact = log_likelihood_and_gradient(problem.features, problem.theta, target)
    at_p = _rel(approximate_gradient(problem.features, problem.theta, target, p), exact)
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
    from maxent_il.two_step import exact_ll_ascent, two_step

    target = problem.data_moments
    steps = two_step(problem.features, demo_moments=target, n_iters=n_iters, lr=lr, q_step="exact")
    ascent = exact_ll_ascent(problem.features, target, n_iters=n_iters, lr=lr)
    err = _rel(np.asarray(steps.thetas), np.asarray(ascent.thetas))
    return CheckResult(
        "E6",
        "two-step with exact q-step = exact LL gradient ascent, every iterate",
        "(15), (20), (21)",
        float(steps.exact_ll[-1]),
        float(ascent.log_likelihoods[-1]),
        err,
        1e-10,
    )


def check_e9(problem: TinyProblem) -> CheckResult:
    """E9: every line of (10)–(14) equals the autograd gradient (9) of E_pG[D + log p_G] (GRU policy)."""
    from gan_equiv.exact.gradients import gradient_lines
    from gan_equiv.models.energies import LinearEnergy
    from gan_equiv.models.policies import GRUPolicy

    torch.manual_seed(problem.seed)
    policy = GRUPolicy(
        problem.space.n_items, problem.space.horizon, embed_dim=4, hidden_dim=6, dtype=torch.float64
    )
    lines = gradient_lines(policy, LinearEnergy(problem.features, theta=problem.theta))
    scale = max(1.0, float(lines.line9.abs().max()))
    return CheckResult(
        "E9",
        "lines (10)–(14) of the generator gradient equal autograd of (9)",
        "(9)–(14)",
        float(lines.line14.norm()),
        float(lines.line9.norm()),
        lines.max_line_discrepancy() / scale,
        1e-10,
    )


def check_e10(
    problem: TinyProblem, *, n_estimates: int = 100, n_samples: int = 64, n_rollouts: int = 4, z: float = 5.0
) -> CheckResult:
    """E10: the Monte-Carlo estimator of (14) (K rollouts per prefix) is unbiased: over independent
    estimates, every coordinate of the mean lies within z standard errors of the exact gradient.
    ``value`` is the largest |z|-score and ``tol`` is z."""
    from gan_equiv.exact.policy_gradients import mc_policy_gradient
    from gan_equiv.exact.q_values import exact_policy_gradient
    from gan_equiv.models.energies import LinearEnergy
    from gan_equiv.models.policies import TabularPolicy

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


CHECKS: dict[str, Callable[[TinyProblem], CheckResult]] = {
    "E1": check_e1,
    "E2": check_e2,
    "E3": check_e3,
    "E4": check_e4,
    "E5": check_e5,
    "E6": check_e6,
    "E7": check_e7,
    "E8": check_e8,
    "E9": check_e9,
    "E10": check_e10,
    "E11": check_e11,
    "E12": check_e12,
}


def run_all_checks(problem: TinyProblem, *, names: list[str] | None = None) -> list[CheckResult]:
    """Run the named checks (all by default) on one problem."""
    chosen = list(CHECKS) if names is None else names
    unknown = [n for n in chosen if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; available: {list(CHECKS)}")
    return [CHECKS[n](problem) for n in chosen]
