"""The GAN ⇄ IRL family (docs/family.md): claims E13–E19, an independent enumeration of the SeqGAN and
GAN-GCL identities with plain loops, the conditions of docs/errata.md 8–10, and the analytic-entropy
generator estimator (exact mean, seeded Monte-Carlo z-test)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from conftest import AUTOGRAD_TOL, EXACT_TOL, MC_Z_SCORE, load_script

from gan_equiv.exact.claim_base import claim_registry, make_tiny_problem
from gan_equiv.exact.family import FAMILY_CHECKS
from gan_equiv.exact.family_common import (
    all_sequences,
    gcl_optimal_log_z,
    generic_policy,
    gibbs_policy,
    js_divergence,
)
from gan_equiv.exact.family_estimator import expected_analytic_entropy_gradient
from gan_equiv.exact.family_gcl import gcl_cost_gradient
from gan_equiv.exact.q_values import exact_policy_gradient, exact_q_values
from gan_equiv.losses import (
    gan_gcl_discriminator_loss,
    gan_gcl_generator_loss,
    seqgan_discriminator_loss,
    seqgan_generator_reward,
)
from gan_equiv.models.energies import LinearEnergy, TabularEnergy
from gan_equiv.models.policies import GRUPolicy
from gan_equiv.train.entropy_gradient import (
    analytic_entropy_surrogate,
    future_entropies,
    leave_one_out,
    step_terms,
)
from gan_equiv.train.rollouts import mc_q_values
from maxent_il.gibbs import GibbsModel
from maxent_il.likelihood import log_likelihood_and_gradient

PROBLEMS = [
    make_tiny_problem(3, 3, state="last", seed=0),
    make_tiny_problem(2, 4, state="time_last", seed=1),
    make_tiny_problem(4, 2, state="history", seed=2),
]


# --- the claims ---------------------------------------------------------------------------------
@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: f"V{p.space.n_items}T{p.space.horizon}")
@pytest.mark.parametrize("check", FAMILY_CHECKS, ids=lambda c: c.__name__)
def test_every_family_check_passes(problem, check) -> None:
    result = check(problem)
    assert result.passed, result


def test_family_checks_extend_the_registry_from_e13() -> None:
    registry = claim_registry(*FAMILY_CHECKS)
    assert list(registry) == [f"E{n}" for n in range(13, 13 + len(FAMILY_CHECKS))]


def test_e15_reports_a_positive_miss() -> None:
    """SeqGAN's reward misses p_data by KL(p_data‖uniform) > 0 when read as a MaxEnt cost."""
    problem = PROBLEMS[0]
    result = FAMILY_CHECKS[2](problem)
    p = problem.data_probs
    assert result.value == pytest.approx(math.log(p.size) + float(p @ np.log(p)), abs=EXACT_TOL)
    assert result.value > 0.05


# --- an independent enumeration: plain loops over every sequence --------------------------------------
def _loop_distributions(problem, policy):
    """p_data, p_G (product of conditionals from next_item_log_probs) and c(S) by loops over V^T."""
    V, T = problem.space.n_items, problem.space.horizon
    index = {s: i for i, s in enumerate(itertools.product(range(V), repeat=T))}
    p_g, cost = {}, {}
    for s in index:  # one sequence at a time, deliberately (independent of the vectorized code)
        prob = 1.0
        for t in range(T):
            prefix = torch.tensor([list(s[:t])], dtype=torch.long)
            with torch.no_grad():
                prob *= float(policy.next_item_log_probs(prefix)[0, s[t]].exp())
        p_g[s] = prob
        cost[s] = sum(float(problem.theta[j]) for j in problem.features.step_indices(np.array([s]))[0])
    p_data = {s: float(problem.data_probs[i]) for s, i in index.items()}
    return index, p_data, p_g, cost


def test_independent_enumeration_seqgan() -> None:
    problem = PROBLEMS[0]
    policy = generic_policy(problem.space, 5)
    index, p_d, p_g, _ = _loop_distributions(problem, policy)
    d_star = {s: p_d[s] / (p_d[s] + p_g[s]) for s in index}
    loss_loop = -sum(p_d[s] * math.log(d_star[s]) + p_g[s] * math.log(1 - d_star[s]) for s in index)
    js_loop = 0.0
    for s in index:
        m = 0.5 * (p_d[s] + p_g[s])
        js_loop += 0.5 * p_d[s] * math.log(p_d[s] / m) + 0.5 * p_g[s] * math.log(p_g[s] / m)
    logits = torch.tensor([math.log(d_star[s] / (1 - d_star[s])) for s in index], dtype=torch.float64)
    w_d = torch.tensor([p_d[s] for s in index], dtype=torch.float64)
    w_g = torch.tensor([p_g[s] for s in index], dtype=torch.float64)
    loss = float(seqgan_discriminator_loss(logits, logits, real_weights=w_d, fake_weights=w_g))
    assert loss == pytest.approx(loss_loop, abs=EXACT_TOL)
    assert loss == pytest.approx(math.log(4) - 2 * js_loop, abs=EXACT_TOL)
    assert js_divergence(w_d.numpy(), w_g.numpy()) == pytest.approx(js_loop, abs=EXACT_TOL)
    reward = seqgan_generator_reward(logits)
    assert np.allclose(reward.numpy(), [d_star[s] for s in index], atol=EXACT_TOL)
    # any other logit table does worse (the minimizer is unique)
    worse = seqgan_discriminator_loss(logits + 0.1, logits + 0.1, real_weights=w_d, fake_weights=w_g)
    assert float(worse) > loss


def test_independent_enumeration_gan_gcl() -> None:
    problem = PROBLEMS[0]
    policy = generic_policy(problem.space, 6)
    index, p_d, p_g, cost = _loop_distributions(problem, policy)
    z_c = sum(math.exp(-cost[s]) for s in index)
    seqs = list(index)
    c = np.array([cost[s] for s in seqs])
    b = gcl_optimal_log_z(c, np.array([p_d[s] for s in seqs]), np.array([p_g[s] for s in seqs]))
    z = math.exp(b)

    def disc(s):
        e = math.exp(-cost[s]) / z
        return e / (e + p_g[s])

    loss_loop = -sum(p_d[s] * math.log(disc(s)) + p_g[s] * math.log(1 - disc(s)) for s in seqs)
    first_order = sum(p_d[s] * (1 - disc(s)) for s in seqs) - sum(p_g[s] * disc(s) for s in seqs)
    finn_z = sum(
        0.5 * (p_d[s] + p_g[s]) * math.exp(-cost[s]) / (0.5 * (math.exp(-cost[s]) / z + p_g[s])) for s in seqs
    )
    gen_loop = sum(p_g[s] * (math.log(1 - disc(s)) - math.log(disc(s))) for s in seqs)
    kl_loop = sum(p_g[s] * (math.log(p_g[s]) - (-cost[s] - math.log(z_c))) for s in seqs)
    t = {k: torch.tensor(v, dtype=torch.float64) for k, v in (("c", c), ("pd", [p_d[s] for s in seqs]))}
    pg = torch.tensor([p_g[s] for s in seqs], dtype=torch.float64)
    loss = gan_gcl_discriminator_loss(
        t["c"], t["c"], b, real_log_p_g=pg.log(), fake_log_p_g=pg.log(), real_weights=t["pd"], fake_weights=pg
    )
    gen = gan_gcl_generator_loss(t["c"], pg.log(), b, weights=pg)
    assert float(loss) == pytest.approx(loss_loop, abs=EXACT_TOL)
    assert abs(first_order) <= EXACT_TOL
    assert finn_z == pytest.approx(z, rel=EXACT_TOL)
    assert float(gen) == pytest.approx(gen_loop, abs=EXACT_TOL)
    assert float(gen) == pytest.approx(kl_loop + b - math.log(z_c), abs=EXACT_TOL)


# --- conditions (docs/errata.md 8–10) ---------------------------------------------------------------
def _gcl_setup(problem, seed):
    cost = problem.features.costs(problem.theta, problem.space.all_sequences())
    policy = generic_policy(problem.space, seed)
    with torch.no_grad():
        p_g = policy.log_prob(all_sequences(problem.space)).exp().numpy()
    return cost, p_g, GibbsModel(problem.features, problem.theta)


@pytest.mark.parametrize("problem", PROBLEMS[:2])
def test_gcl_optimal_log_z_is_not_log_z_for_a_generic_generator(problem) -> None:
    """Finn et al.'s (a) as an *estimate of the partition function* needs p_G = P_c (or P_c = p_data)."""
    cost, p_g, model = _gcl_setup(problem, 11)
    b = gcl_optimal_log_z(cost, problem.data_probs, p_g)
    assert abs(b - model.log_partition) > 1e-3
    b_c = gcl_optimal_log_z(cost, problem.data_probs, model.probabilities())
    assert b_c == pytest.approx(model.log_partition, abs=EXACT_TOL)
    # the IS estimate with the true mixture μ as proposal is Z_c at any p_G; Finn's uses μ̃ instead
    mu = 0.5 * (problem.data_probs + p_g)
    assert math.log(float(mu @ (np.exp(-cost) / mu))) == pytest.approx(model.log_partition, abs=EXACT_TOL)


def test_gcl_optimal_log_z_is_exact_when_the_cost_model_is_the_data() -> None:
    problem = PROBLEMS[0]
    _, p_g, _ = _gcl_setup(problem, 12)
    cost = -np.log(problem.data_probs) + 0.7  # P_c = p_data, Z_c = e^{−0.7}
    assert gcl_optimal_log_z(cost, problem.data_probs, p_g) == pytest.approx(-0.7, abs=EXACT_TOL)


@pytest.mark.parametrize("problem", PROBLEMS[:2])
def test_gcl_cost_gradient_is_half_the_maxent_gradient_only_at_p_g_equal_p_c(problem) -> None:
    cost, p_g, model = _gcl_setup(problem, 13)
    _, grad15 = log_likelihood_and_gradient(problem.features, problem.theta, problem.data_moments)
    grad = gcl_cost_gradient(problem, p_g, gcl_optimal_log_z(cost, problem.data_probs, p_g))
    assert np.abs(grad + 0.5 * grad15).max() > 1e-3  # not −½·(15) ...
    assert np.abs(grad + grad15).max() > 1e-3  # ... nor −(15) for a generic p_G
    p_c = model.probabilities()
    at_pc = gcl_cost_gradient(problem, p_c, gcl_optimal_log_z(cost, problem.data_probs, p_c))
    assert np.allclose(at_pc, -0.5 * grad15, atol=EXACT_TOL, rtol=0)
    # EB-SeqGAN's cost step (E7) at q = P_c is −(15): GAN-GCL's step is half of it
    ebgan_step = problem.data_moments - problem.features.weighted_counts(problem.space.all_sequences(), p_c)
    assert np.allclose(at_pc, 0.5 * ebgan_step, atol=EXACT_TOL, rtol=0)


def test_gibbs_policy_is_p_c() -> None:
    problem = PROBLEMS[1]
    policy = gibbs_policy(problem.features, problem.theta)
    with torch.no_grad():
        p = policy.log_prob(all_sequences(problem.space)).exp().numpy()
    assert np.allclose(p, GibbsModel(problem.features, problem.theta).probabilities(), atol=EXACT_TOL)


# --- the analytic-entropy estimator -------------------------------------------------------------------
def _gru_problem(seed: int = 3):
    problem = make_tiny_problem(3, 3, state="last", seed=seed)
    torch.manual_seed(seed)
    policy = GRUPolicy(3, 3, embed_dim=4, hidden_dim=5, dtype=torch.float64)
    return problem, policy, LinearEnergy(problem.features, theta=problem.theta)


def test_step_entropies_are_the_conditional_entropies_and_sum_to_h() -> None:
    """Chain rule: Σ_S p_G(S) Σ_t H(p_G(·|h_t)) = H(p_G) = −Σ_S p_G log p_G."""
    _, policy, _ = _gru_problem()
    seqs = all_sequences(policy_space := make_tiny_problem(3, 3).space)
    terms = step_terms(policy, seqs)
    log_p = policy.log_prob(seqs).detach()
    assert torch.allclose(terms.step_log_probs.sum(1).detach(), log_p, atol=EXACT_TOL, rtol=0)
    for t in range(policy_space.horizon):
        cond = policy.next_item_log_probs(seqs[:, :t]).detach()
        assert torch.allclose(
            terms.step_entropies[:, t].detach(), -(cond.exp() * cond).sum(1), atol=EXACT_TOL
        )
    h_chain = float((log_p.exp() * terms.step_entropies.detach().sum(1)).sum())
    assert h_chain == pytest.approx(-float((log_p.exp() * log_p).sum()), abs=EXACT_TOL)
    fut = future_entropies(terms.step_entropies)
    h = terms.step_entropies.detach()
    assert torch.allclose(fut[:, 0], h[:, 1] + h[:, 2]) and torch.all(fut[:, -1] == 0)


@pytest.mark.parametrize("w", [0.0, 0.5, 1.0])
def test_analytic_entropy_estimator_has_the_exact_mean(w: float) -> None:
    _, policy, energy = _gru_problem()
    exact = exact_policy_gradient(policy, energy, entropy_weight=w)
    for baseline in (True, False):
        mean = expected_analytic_entropy_gradient(policy, energy, entropy_weight=w, exact_baseline=baseline)
        assert torch.allclose(mean, exact, atol=AUTOGRAD_TOL, rtol=0)


def test_analytic_entropy_estimator_monte_carlo_z_test() -> None:
    """Seeded rollouts (K = 2) and the leave-one-out baseline: the mean of 150 estimates lies within
    MC_Z_SCORE standard errors of ∇J in every coordinate."""
    _, policy, energy = _gru_problem(4)
    gen = torch.Generator().manual_seed(4)
    params = [p for p in policy.parameters() if p.requires_grad]
    estimates = []
    for _ in range(150):  # independent repetitions of the estimator, not a loop over sequences
        seqs = policy.sample(16, generator=gen)
        q = mc_q_values(policy, energy, seqs, n_rollouts=2, entropy_weight=0.0, generator=gen)
        loss = analytic_entropy_surrogate(policy, seqs, q, entropy_weight=1.0, baseline="leave_one_out")
        grads = torch.autograd.grad(loss, params)
        estimates.append(torch.cat([g.reshape(-1) for g in grads]).double())
    est = torch.stack(estimates)
    exact = exact_policy_gradient(policy, energy, entropy_weight=1.0)
    stderr = est.std(dim=0) / est.shape[0] ** 0.5
    z = ((est.mean(dim=0) - exact).abs() / stderr.clamp_min(1e-12)).max()
    assert float(z) <= MC_Z_SCORE


def test_analytic_entropy_surrogate_rejects_bad_input() -> None:
    _, policy, _ = _gru_problem()
    seqs = policy.sample(4, generator=torch.Generator().manual_seed(0))
    q = torch.zeros(4, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="energy_q"):
        analytic_entropy_surrogate(policy, seqs, q[:, :2], entropy_weight=1.0)
    with pytest.raises(ValueError, match="unknown baseline"):
        analytic_entropy_surrogate(policy, seqs, q, entropy_weight=1.0, baseline="mean")
    with pytest.raises(ValueError, match="baseline must have shape"):
        analytic_entropy_surrogate(policy, seqs, q, entropy_weight=1.0, baseline=q[:2])
    with pytest.raises(ValueError, match="weights must have shape"):
        analytic_entropy_surrogate(policy, seqs, q, entropy_weight=1.0, weights=torch.ones(3))
    with pytest.raises(ValueError, match="entropy_weight"):
        analytic_entropy_surrogate(policy, seqs, q, entropy_weight=float("nan"))
    with pytest.raises(ValueError, match="N >= 2"):
        leave_one_out(q[:1])


def test_dropping_the_future_entropy_score_term_biases_the_estimator() -> None:
    """Both entropy terms are needed: the direct term alone (future entropies cancelled out of the
    score weights) does not have mean ∇J."""
    _, policy, energy = _gru_problem()
    seqs = all_sequences(make_tiny_problem(3, 3).space)
    q = exact_q_values(policy, energy, seqs, entropy_weight=0.0)
    with torch.no_grad():
        p = policy.log_prob(seqs).exp()
    direct_only = q + future_entropies(step_terms(policy, seqs).step_entropies).double()  # w = 1
    surrogate = analytic_entropy_surrogate(policy, seqs, direct_only, entropy_weight=1.0, weights=p)
    params = [prm for prm in policy.parameters() if prm.requires_grad]
    grad = torch.cat([g.reshape(-1) for g in torch.autograd.grad(surrogate, params)])
    exact = exact_policy_gradient(policy, energy, entropy_weight=1.0)
    assert float((grad - exact).abs().max()) > 1e-3


def test_variance_benchmark_fast_mode(capsys: pytest.CaptureFixture[str]) -> None:
    results = load_script("benchmarks/bench_estimator_variance.py").main(["--fast", "--threads", "1"])
    assert set(results) == {"paper_full", "full_loo", "rtg_loo", "analytic", "analytic_loo"}
    assert results["analytic_loo"]["ratio"] < 1.0  # less variance than the paper's full return
    assert "analytic_loo / rtg_loo" in capsys.readouterr().out


def test_seqgan_rewards_share_the_fixed_point_but_not_the_gradient() -> None:
    """With D* held fixed, eq. (2)'s log(1 − D*) gives ∇2·JS; SeqGAN's code reward D* and the
    "log-likelihood of the discriminator" log D* of §2.3 give other directions — all three vanish at
    p_G = p_data (docs/errata.md 10)."""
    problem = PROBLEMS[0]
    space, p_d = problem.space, problem.data_probs
    seqs = all_sequences(space)
    policy = generic_policy(space, 21)
    with torch.no_grad():
        p_g = policy.log_prob(seqs).exp().numpy()
    d_star = p_d / (p_d + p_g)

    def grad(values: np.ndarray) -> torch.Tensor:
        return exact_policy_gradient(policy, TabularEnergy(3, 3, values=values), entropy_weight=0.0)

    js = js_divergence(torch.as_tensor(p_d), policy.log_prob(seqs).exp())
    params = [prm for prm in policy.parameters() if prm.requires_grad]
    grad_js = torch.cat([g.reshape(-1) for g in torch.autograd.grad(2 * js, params)]).double()
    g_eq2 = grad(np.log1p(-d_star))
    assert torch.allclose(g_eq2, grad_js, atol=AUTOGRAD_TOL, rtol=0)
    for other in (grad(-d_star), grad(-np.log(d_star))):  # reward D (code), reward log D (§2.3)
        cosine = float(other @ grad_js / (other.norm() * grad_js.norm()))
        assert cosine < 1 - 1e-4  # not parallel to ∇JS
