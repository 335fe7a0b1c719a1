"""Places where the paper's statements need a condition, shown on exact problems (docs/errata.md)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from conftest import AUTOGRAD_TOL, SOLVER_TOL
from strategies import random_policy

from gan_equiv.exact.gradients import gradient_lines
from gan_equiv.models.policies import SequencePolicy
from maxent_il.features import StateActionFeatures
from maxent_il.gibbs import GibbsModel
from maxent_il.likelihood import log_likelihood_and_gradient
from maxent_il.primal import solve_primal
from maxent_il.solver import UnboundedOptimumWarning, fit_maxent
from maxent_il.space import SequenceSpace


def test_history_features_make_the_maxent_fit_the_empirical_distribution() -> None:
    """With the paper's state-action features (state = whole prefix) every sequence has its own
    path, so maximizing the likelihood (8) reproduces the empirical distribution: the fitted P_θ
    puts (numerically) all its mass on the demonstrated sequences, in their empirical proportions,
    and the optimum is at infinity for every unvisited prefix (the solver warns)."""
    space = SequenceSpace(3, 3)
    rng = np.random.default_rng(7)
    demos = rng.integers(0, 3, size=(12, 3))
    features = StateActionFeatures(space, "history")
    with pytest.warns(UnboundedOptimumWarning):
        fit = fit_maxent(features, demos, gtol=1e-7, max_iter=5000)
    p = GibbsModel(features, fit.theta).probabilities()
    empirical = np.bincount(space.encode(demos), minlength=space.size) / len(demos)
    assert np.abs(p - empirical).max() < 1e-3
    assert p[empirical == 0].sum() < 1e-3
    # with a Markov ('last') state the same demos give a smoother model that generalizes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnboundedOptimumWarning)
        markov = fit_maxent(StateActionFeatures(space, "last"), demos, l2=1e-2)
    q = GibbsModel(StateActionFeatures(space, "last"), markov.theta).probabilities()
    assert q[empirical == 0].sum() > 0.05


# --- entry 1: eq. (5) as printed on a flat objective ------------------------------------------------
def _entropy(policy: SequencePolicy) -> torch.Tensor:
    """H(p_G) = −Σ_S p_G(S) log p_G(S), exactly over all V^T sequences."""
    log_p = policy.all_log_probs()  # (V^T,)
    return -(log_p.exp() * log_p).sum()


def _history_weighted_collision(policy: SequencePolicy) -> torch.Tensor:
    """Σ_t Σ_h p(h) · ½ Σ_s p(s | h)² with the history weights p(h) held fixed (detached)."""
    V = policy.n_items
    weight = torch.ones(1, dtype=torch.float64)  # p(h) of the V^t prefixes of length t, base-V order
    total = torch.zeros((), dtype=torch.float64)
    for t in range(policy.horizon):
        prefixes = torch.as_tensor(SequenceSpace(V, t).all_sequences()) if t else torch.zeros(1, 0)
        cond = policy.next_item_log_probs(prefixes.long()).exp()  # (V^t, V): p(s | h)
        total = total + (weight * 0.5 * (cond**2).sum(dim=1)).sum()
        weight = (weight[:, None] * cond.detach()).reshape(-1)  # p(h, s): the prefixes of length t + 1
    return total


def _flat_grad(value: torch.Tensor, policy: SequencePolicy) -> torch.Tensor:
    params = [p for p in policy.parameters() if p.requires_grad]
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(value, params)]).double()


@pytest.mark.parametrize("kind", ["tabular", "gru"])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_eq5_as_printed_on_a_flat_objective_moves_the_entropy_by_the_sign_of_q(
    kind: str, sign: float
) -> None:
    """Constant D = k, w = 0: J ≡ k, ∇J = 0, yet (5) as printed = k·∇Σ_t E_h ½Σ_s p(s|h)² (two routes).
    A descent step along it (the generator minimizes J) raises H(p_G) for k = +2.5 and lowers it
    for k = −2.5: the direction is the sign of Q, not "towards sharper conditionals" (errata 1)."""
    k = 2.5 * sign
    policy = random_policy(kind, 3, 2, seed=7)
    lines = gradient_lines(policy, torch.full((9,), k, dtype=torch.float64), entropy_weight=0.0)
    step = lines.eq5_printed
    assert float(lines.line9.abs().max()) <= AUTOGRAD_TOL  # the objective is flat
    # route 2: k times the gradient of the history-weighted collision probability
    collision_grad = _flat_grad(_history_weighted_collision(policy), policy)
    assert torch.allclose(step, k * collision_grad, rtol=0, atol=AUTOGRAD_TOL)
    # the rate of change of H along −step (descent), exactly, has the sign of k and is not small
    rate = -float(_flat_grad(_entropy(policy), policy) @ step)
    assert np.sign(rate) == np.sign(k) and abs(rate) > 1e-2
    # and a finite step of size ε moves H by ε·rate to first order, with the same sign
    eps = 1e-4
    before = float(_entropy(policy).detach())
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(
            torch.nn.utils.parameters_to_vector(policy.parameters()) - eps * step.to(torch.float64),
            policy.parameters(),
        )
    change = float(_entropy(policy).detach()) - before
    assert np.sign(change) == np.sign(k)
    assert abs(change - eps * rate) <= 1e-3 * abs(eps * rate)


# --- entry 7: Slater's condition, attainment of the dual, and the zero duality gap -------------------
def _history_problem() -> tuple[StateActionFeatures, np.ndarray, np.ndarray]:
    """`history` features on V = 2, T = 3, every sequence s repeated 1 + (index(s) mod 3) times."""
    space = SequenceSpace(2, 3)
    counts = 1 + np.arange(space.size) % 3
    return StateActionFeatures(space, "history"), space.all_sequences(), counts


def test_history_features_with_demos_on_every_sequence_have_a_finite_optimum() -> None:
    """Demos covering all V^T sequences: the empirical distribution is strictly positive, Slater's
    condition holds, and the dual optimum is finite — fit_maxent converges without a warning to a
    finite θ whose moments match the demos, P_θ is the empirical distribution, the primal solved
    without θ is the same distribution, and H(P_θ*) = −LL(θ*) (zero gap, attained)."""
    features, sequences, counts = _history_problem()
    demos = np.repeat(sequences, counts, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnboundedOptimumWarning)
        fit = fit_maxent(features, demos, gtol=1e-10)
    assert fit.converged and fit.boundary == "" and fit.unused_features == ()
    assert np.all(np.isfinite(fit.theta)) and np.abs(fit.theta).max() < 10.0
    assert fit.moment_gap <= SOLVER_TOL
    p = GibbsModel(features, fit.theta).probabilities()
    assert np.abs(p - counts / counts.sum()).max() <= SOLVER_TOL
    primal = solve_primal(features, fit.demo_moments)
    assert primal.success and np.abs(primal.probabilities - p).max() <= SOLVER_TOL
    assert abs(primal.entropy - (-fit.log_likelihood)) <= SOLVER_TOL


def test_on_the_boundary_the_dual_optimum_diverges_while_the_primal_is_attained() -> None:
    """Two sequences left out of the demos: their last-step features are unused, the moments sit on
    the boundary and Slater's condition fails. The primal (7) is still attained (zero mass on the
    two sequences, moments matched); the dual is not: the gradient (15) on the unused features is
    > 0 at every fitted θ, those θ_i grow as the fit tightens, and −LL(θ) decreases to H(primal) from
    above (weak duality: −LL(θ) − H = KL(P*‖P_θ) ≥ 0) — the gap closes in the limit only."""
    features, sequences, counts = _history_problem()
    counts[[1, 6]] = 0
    demos = np.repeat(sequences, counts, axis=0)
    primal = None
    thetas, gaps = [], []
    for gtol in (1e-3, 1e-5, 1e-7):
        with pytest.warns(UnboundedOptimumWarning):
            fit = fit_maxent(features, demos, gtol=gtol, max_iter=20000)
        unused = list(fit.unused_features)
        assert fit.converged and fit.boundary != "" and len(unused) == 2
        if primal is None:
            primal = solve_primal(features, fit.demo_moments)
            assert primal.success and primal.constraint_violation <= SOLVER_TOL
            assert np.all(primal.probabilities[[1, 6]] == 0)
            assert np.abs(primal.probabilities - counts / counts.sum()).max() <= SOLVER_TOL
        _, grad = log_likelihood_and_gradient(features, fit.theta, fit.demo_moments)
        assert np.all(grad[unused] > 0)  # ∂LL/∂θ_i = E_P f_i − 0 > 0: no finite stationary point
        gap = -fit.log_likelihood - primal.entropy
        assert gap >= -SOLVER_TOL
        thetas.append(float(fit.theta[unused].min()))
        gaps.append(gap)
    assert thetas[0] + 2.0 < thetas[1] and thetas[1] + 2.0 < thetas[2]  # diverges (≈ log 1/gtol)
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] <= 1e-9 and gaps[0] > 1e-5  # gap → 0, not at 0
