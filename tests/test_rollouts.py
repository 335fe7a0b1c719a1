"""Q-values of eq. (14): exact by enumeration, Monte-Carlo rollouts, and claim E10.

E10: the Monte-Carlo rollout estimator of eq. (14) is unbiased (seeded z-tests of the mean of many
independent estimates against the exact gradient of J = E_{p_G}[D + w log p_G]); the reward-to-go
form has the same mean and a lower variance; baselines keep the mean; eq. (5) *as printed* (∇p_G
in place of ∇log p_G) is biased by many standard errors (docs/errata.md).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import AUTOGRAD_TOL, EXACT_TOL, FINITE_DIFF_TOL, MC_Z_SCORE
from hypothesis import given
from hypothesis import strategies as st
from strategies import seeds, spaces

from gan_equiv.exact.policy_gradients import mc_policy_gradient, mc_policy_gradient_eq5_as_printed
from gan_equiv.exact.q_values import (
    exact_policy_gradient,
    exact_q_values,
    exact_reward_to_go,
    exact_state_values,
)
from gan_equiv.models.energies import CNNEnergy, LinearEnergy, TabularEnergy
from gan_equiv.models.policies import GRUPolicy, TabularPolicy, inverse_cdf_draw, sample_categorical
from gan_equiv.train.rollouts import mc_q_values, mc_rollouts, naive_mc_q_values
from maxent_il.features import StateActionFeatures
from maxent_il.space import EnumerationTooLargeError, SequenceSpace

F64 = torch.float64


# --- problems ------------------------------------------------------------------------------------
def tabular_problem(V: int, T: int, seed: int, *, policy_scale: float = 1.0, energy_scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    policy = TabularPolicy(V, T, init_scale=policy_scale, generator=g)
    energy = TabularEnergy(V, T, values=energy_scale * torch.randn(V**T, generator=g, dtype=F64))
    return policy, energy


def gru_problem(V: int, T: int, seed: int):
    torch.manual_seed(seed)
    policy = GRUPolicy(V, T, embed_dim=4, hidden_dim=6, dtype=F64)
    features = StateActionFeatures(SequenceSpace(V, T), "last")
    theta = np.random.default_rng(seed).normal(size=features.dim)
    return policy, LinearEnergy(features, theta=theta)


@st.composite
def tabular_problems(draw):
    """(policy, energy, w) on a random tiny space (V ≤ 3, T ≤ 4), random logits and energies."""
    space = draw(spaces(max_items=3, max_horizon=4))
    policy, energy = tabular_problem(space.n_items, space.horizon, draw(seeds()))
    return policy, energy, draw(st.sampled_from([1.0, 0.0, 0.5, 2.0]))


def everything(policy) -> torch.Tensor:
    return torch.as_tensor(SequenceSpace(policy.n_items, policy.horizon).all_sequences())


def objective(policy, energy, w: float) -> torch.Tensor:
    """J = Σ_S p_G(S)[D(S) + w log p_G(S)] (eq. 9), straight from the enumeration."""
    every = everything(policy)
    log_p = policy.log_prob(every).double()
    return (log_p.exp() * (energy(every).double() + w * log_p)).sum()


# --- exact Q --------------------------------------------------------------------------------------
@given(tabular_problems())
def test_exact_q_at_horizon_is_the_return(problem):
    policy, energy, w = problem
    every = everything(policy)
    q = exact_q_values(policy, energy, every, entropy_weight=w)
    assert q.shape == every.shape and q.dtype == F64
    with torch.no_grad():
        ret = energy(every) + w * policy.log_prob(every)
    torch.testing.assert_close(q[:, -1], ret, atol=EXACT_TOL, rtol=0)


@given(tabular_problems())
def test_exact_q_tower_property_and_objective(problem):
    """Q_t(h) = Σ_a p(a|h) Q_{t+1}(h a), the right side from next_item_log_probs; E_{s_1}[Q_1] = J."""
    policy, energy, w = problem
    V, T = policy.n_items, policy.horizon
    every = everything(policy)
    q = exact_q_values(policy, energy, every, entropy_weight=w)
    with torch.no_grad():
        for t in range(1, T):
            probs = policy.next_item_log_probs(every[:, :t]).exp()  # (N, V): p(a | s_1 … s_t)
            expected = torch.zeros(every.shape[0], dtype=F64)
            for a in range(V):
                child = every.clone()
                child[:, t] = a  # Q_{t+1} depends on s_1 … s_t a only
                expected += probs[:, a] * exact_q_values(policy, energy, child, entropy_weight=w)[:, t]
            torch.testing.assert_close(q[:, t - 1], expected, atol=EXACT_TOL, rtol=0)
        p1 = policy.next_item_log_probs(torch.zeros(1, 0, dtype=torch.long)).exp()[0]  # (V,)
        first = torch.arange(V)[:, None].expand(V, T).contiguous()  # any sequence starting with a
        e_q1 = (p1 * exact_q_values(policy, energy, first, entropy_weight=w)[:, 0]).sum()
        J = objective(policy, energy, w)
    torch.testing.assert_close(e_q1, J, atol=EXACT_TOL, rtol=0)
    values = exact_state_values(policy, energy, every, entropy_weight=w)
    torch.testing.assert_close(values[:, 0], J.expand(every.shape[0]), atol=EXACT_TOL, rtol=0)


@given(tabular_problems())
def test_exact_reward_to_go_and_values(problem):
    """Q^rtg_t = Q_t − w Σ_{k<t} log p(s_k|h_k); values are p-averages over s_t; rtg − V = Q_t − Q_{t−1}."""
    policy, energy, w = problem
    every = everything(policy)
    q = exact_q_values(policy, energy, every, entropy_weight=w)
    with torch.no_grad():
        step = policy.step_log_probs(every)
    past = torch.cumsum(step, dim=1) - step
    rtg = exact_reward_to_go(policy, energy, every, entropy_weight=w)
    torch.testing.assert_close(rtg, q - w * past, atol=EXACT_TOL, rtol=0)
    for mode, weights in (("full", q), ("reward_to_go", rtg)):
        values = exact_state_values(policy, energy, every, entropy_weight=w, mode=mode)
        # V(h_t) = Σ_{s_t} p(s_t|h_t) weights_t: average over the V siblings of each node.
        V, T = policy.n_items, policy.horizon
        for t in range(1, T + 1):
            p = step[:, t - 1].exp()
            block = V ** (T - t + 1)  # sequences sharing h_t form blocks; siblings at stride V^(T−t)
            pw = (p * weights[:, t - 1]).view(-1, V, V ** (T - t))[:, :, 0].sum(dim=1)  # (V^(t−1),)
            torch.testing.assert_close(
                values[::block, t - 1], pw, atol=EXACT_TOL, rtol=0, msg=f"mode={mode}, t={t}"
            )
    adv = exact_reward_to_go(policy, energy, every, entropy_weight=w, subtract_value=True)
    full_values = exact_state_values(policy, energy, every, entropy_weight=w)
    torch.testing.assert_close(adv, q - full_values, atol=EXACT_TOL, rtol=0)


def test_exact_policy_gradient_matches_finite_differences():
    policy, energy = tabular_problem(2, 3, seed=3)
    grad = exact_policy_gradient(policy, energy, entropy_weight=0.7)
    table = policy.table.detach().clone()
    h, fd = 1e-5, torch.empty(table.numel(), dtype=F64)
    with torch.no_grad():
        for i in range(table.numel()):  # central differences of the enumerated J
            bumped = []
            for sign in (1, -1):
                policy.table.copy_(table)
                policy.table.view(-1)[i] += sign * h
                bumped.append(objective(policy, energy, 0.7))
            fd[i] = (bumped[0] - bumped[1]) / (2 * h)
        policy.table.copy_(table)
    torch.testing.assert_close(grad, fd, atol=FINITE_DIFF_TOL, rtol=0)


# --- Monte-Carlo Q ----------------------------------------------------------------------------------
def single_rollout_estimates(policy, energy, seqs, M: int, seed: int, *, naive: bool = False, **kw):
    """M independent one-rollout estimates of Q for each given sequence: (M, N, T)."""
    g = torch.Generator().manual_seed(seed)
    fn = naive_mc_q_values if naive else mc_q_values
    q = fn(policy, energy, seqs.repeat(M, 1), n_rollouts=1, generator=g, **kw)
    return q.view(M, *seqs.shape)


def z_scores(samples: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    """(mean − exact) / stderr per entry; entries with zero spread must match exactly (z := 0)."""
    mean, se = samples.mean(dim=0), samples.std(dim=0) / math.sqrt(samples.shape[0])
    constant = se == 0
    assert torch.allclose(mean[constant], exact[constant], atol=AUTOGRAD_TOL, rtol=0)
    return torch.where(constant, 0.0, (mean - exact) / torch.where(constant, 1.0, se))


@pytest.mark.parametrize("kind", ["tabular", "gru"])
def test_mc_q_values_unbiased(kind):
    policy, energy = tabular_problem(3, 4, seed=1) if kind == "tabular" else gru_problem(3, 4, seed=1)
    seqs = policy.sample(6, generator=torch.Generator().manual_seed(0))
    for mode, exact in (
        ("full", exact_q_values(policy, energy, seqs)),
        ("reward_to_go", exact_reward_to_go(policy, energy, seqs)),
    ):
        samples = single_rollout_estimates(policy, energy, seqs, 3000, seed=5, mode=mode)
        torch.testing.assert_close(samples[:, :, -1], exact[:, -1].expand(3000, -1), atol=EXACT_TOL, rtol=0)
        z = z_scores(samples, exact)
        assert z.abs().max() <= MC_Z_SCORE, f"mode={mode}: max |z| = {z.abs().max():.2f}"


@pytest.mark.parametrize("kind", ["tabular", "gru"])
def test_vectorized_equals_naive_under_identical_streams(kind):
    policy, energy = tabular_problem(3, 4, seed=2) if kind == "tabular" else gru_problem(3, 4, seed=2)
    seqs = policy.sample(5, generator=torch.Generator().manual_seed(1))
    for mode, w in (("full", 1.0), ("reward_to_go", 0.5)):
        kw = dict(n_rollouts=6, entropy_weight=w, mode=mode)
        fast = mc_q_values(
            policy,
            energy,
            seqs,
            generator=torch.Generator().manual_seed(9),
            stream="naive",
            chunk_rows=7,
            **kw,
        )
        slow = naive_mc_q_values(policy, energy, seqs, generator=torch.Generator().manual_seed(9), **kw)
        torch.testing.assert_close(fast, slow, atol=1e-12, rtol=0)


def test_vectorized_and_naive_agree_statistically():
    """Compact stream (different draws): per-entry two-sample z-test of the means."""
    policy, energy = gru_problem(3, 4, seed=4)
    seqs = policy.sample(5, generator=torch.Generator().manual_seed(2))
    fast = single_rollout_estimates(policy, energy, seqs, 2000, seed=11)
    slow = single_rollout_estimates(policy, energy, seqs, 2000, seed=12, naive=True)
    se = torch.sqrt((fast.var(dim=0) + slow.var(dim=0)) / 2000)
    diff = fast.mean(dim=0) - slow.mean(dim=0)
    torch.testing.assert_close(diff[:, -1], torch.zeros(5, dtype=F64), atol=EXACT_TOL, rtol=0)
    assert (diff[:, :-1] / se[:, :-1]).abs().max() <= MC_Z_SCORE


def test_mc_q_values_reproducible_and_chunk_invariant():
    policy, energy = gru_problem(3, 4, seed=5)
    seqs = policy.sample(4, generator=torch.Generator().manual_seed(3))

    def run(seed, **kw):
        return mc_q_values(
            policy, energy, seqs, n_rollouts=5, generator=torch.Generator().manual_seed(seed), **kw
        )

    first = run(7)
    assert torch.equal(first, run(7))
    assert not torch.equal(first, run(8))
    for chunk in (1, 3, 1000):
        assert torch.equal(first, run(7, chunk_rows=chunk))
    assert torch.equal(run(7, stream="naive"), run(7, stream="naive", chunk_rows=2))


def test_mc_rollouts_layout():
    policy, _ = gru_problem(3, 4, seed=6)
    seqs = policy.sample(3, generator=torch.Generator().manual_seed(4))
    roll = mc_rollouts(policy, seqs, n_rollouts=4, generator=torch.Generator().manual_seed(5))
    assert roll.sequences.shape == (3, 3, 4, 4) and roll.log_probs.shape == (3, 3, 4)
    for t in range(1, 4):
        kept = roll.sequences[:, t - 1, :, :t]
        assert torch.equal(kept, seqs[:, None, :t].expand_as(kept))
    with torch.no_grad():
        log_p = policy.log_prob(roll.sequences.reshape(-1, 4)).view(3, 3, 4)
    torch.testing.assert_close(roll.log_probs, log_p, atol=1e-12, rtol=0)


def test_float32_rollouts_draw_the_float64_completions():
    """A float32 policy: the float32 sampler (default under the compact stream) draws the same
    completions as the float64 one; log p_G agrees to the float32 rounding bound."""
    torch.manual_seed(0)
    policy = GRUPolicy(300, 6, embed_dim=8, hidden_dim=16)
    seqs = policy.sample(5, generator=torch.Generator().manual_seed(1))
    runs = {
        prec: mc_rollouts(
            policy, seqs, n_rollouts=7, generator=torch.Generator().manual_seed(2), precision=prec
        )
        for prec in ("auto", "float32", "float64")
    }
    assert torch.equal(runs["auto"].sequences, runs["float32"].sequences)
    assert torch.equal(runs["float32"].sequences, runs["float64"].sequences)
    torch.testing.assert_close(runs["float32"].log_probs, runs["float64"].log_probs, atol=1e-4, rtol=0)
    with torch.no_grad():
        log_p = policy.log_prob(runs["float32"].sequences.reshape(-1, 6)).double().view(5, 5, 7)
    torch.testing.assert_close(runs["float32"].log_probs, log_p, atol=1e-4, rtol=0)


def test_inverse_cdf_draw_replicates_sample_categorical():
    for dtype in (torch.float32, F64):
        logits = torch.randn(500, 7, generator=torch.Generator().manual_seed(0), dtype=dtype) * 2
        expected = sample_categorical(logits, torch.Generator().manual_seed(1))
        u = torch.rand(500, 1, generator=torch.Generator().manual_seed(1), dtype=F64)
        items, log_p = inverse_cdf_draw(logits, u)
        assert torch.equal(items, expected)
        torch.testing.assert_close(log_p, torch.log_softmax(logits.double(), -1)[torch.arange(500), items])


def test_horizon_one_needs_no_rollouts():
    policy, energy = tabular_problem(5, 1, seed=7)
    seqs = torch.arange(5)[:, None]
    exact = exact_q_values(policy, energy, seqs, entropy_weight=0.3)
    for fn in (mc_q_values, naive_mc_q_values):
        torch.testing.assert_close(fn(policy, energy, seqs, n_rollouts=3, entropy_weight=0.3), exact)


# --- E10: Monte-Carlo policy gradient of eq. (14) -----------------------------------------------------
def paired_estimates(policy, energy, configs: dict, M: int, n_samples: int, K: int) -> dict:
    """M independent gradient estimates per configuration; estimate i uses seed i in every
    configuration (same sampled sequences and rollouts), so configurations are paired."""
    out = {}
    for name, kw in configs.items():
        kw = dict(kw)
        fn = kw.pop("fn", mc_policy_gradient)
        out[name] = torch.stack(
            [
                fn(policy, energy, n_samples, n_rollouts=K, generator=torch.Generator().manual_seed(i), **kw)
                for i in range(M)
            ]
        )
    return out


CONFIGS = {
    "full": dict(mode="full"),
    "reward_to_go": dict(mode="reward_to_go"),
    "eq5_as_printed": dict(fn=mc_policy_gradient_eq5_as_printed),
}


@pytest.fixture(scope="module")
def e10_tabular(_single_torch_thread):
    policy, energy = tabular_problem(3, 3, seed=0, policy_scale=0.5, energy_scale=0.5)
    configs = dict(CONFIGS)
    configs["exact_value"] = dict(mode="full", baseline="exact_value")
    configs["leave_one_out"] = dict(mode="reward_to_go", baseline="leave_one_out")
    return policy, energy, paired_estimates(policy, energy, configs, M=300, n_samples=16, K=4)


@pytest.fixture(scope="module")
def e10_gru(_single_torch_thread):
    policy, energy = gru_problem(3, 3, seed=0)
    return policy, energy, paired_estimates(policy, energy, CONFIGS, M=200, n_samples=16, K=4)


@pytest.fixture(params=["tabular", "gru"])
def e10(request):
    return request.getfixturevalue(f"e10_{request.param}")


def exact_eq5_as_printed(policy, energy) -> torch.Tensor:
    """E[Σ_t ∇p_G(s_t|h_t) Q_t] by enumeration (the exact expectation of eq. 5 as printed)."""
    every = everything(policy)
    q = exact_q_values(policy, energy, every)  # (V^T, T), constants
    step = policy.step_log_probs(every)
    weight = step.sum(dim=1).exp().detach()  # p_G(S), held fixed: it is the sampling distribution
    surrogate = (weight * (step.exp() * q).sum(dim=1)).sum()
    grads = torch.autograd.grad(surrogate, list(policy.parameters()))
    return torch.cat([g.reshape(-1) for g in grads])


@pytest.mark.parametrize("mode", ["full", "reward_to_go"])
def test_e10_mc_gradient_unbiased(e10, mode):
    policy, energy, est = e10
    z = z_scores(est[mode], exact_policy_gradient(policy, energy))
    assert z.abs().max() <= MC_Z_SCORE, f"max |z| = {z.abs().max():.2f} over {z.numel()} components"


@pytest.mark.parametrize("baseline", ["exact_value", "leave_one_out"])
def test_e10_baseline_keeps_the_mean(e10_tabular, baseline):
    policy, energy, est = e10_tabular
    z = z_scores(est[baseline], exact_policy_gradient(policy, energy))
    assert z.abs().max() <= MC_Z_SCORE
    assert est[baseline].var(dim=0).sum() < est["full"].var(dim=0).sum()


def test_e10_reward_to_go_has_lower_variance(e10):
    """Paired comparison of total variance tr Cov: with a_i, b_i the squared deviations of estimate i
    (full, reward-to-go), log(b̄/ā) has delta-method stderr sd(b_i/b̄ − a_i/ā)/√M (robust to
    kurtosis and to the pairing); require it MC_Z_SCORE stderrs below 0."""
    _, _, est = e10
    full, rtg = est["full"], est["reward_to_go"]
    a = ((full - full.mean(dim=0)) ** 2).sum(dim=1)
    b = ((rtg - rtg.mean(dim=0)) ** 2).sum(dim=1)
    log_ratio = math.log(b.mean() / a.mean())
    se = float((b / b.mean() - a / a.mean()).std()) / math.sqrt(full.shape[0])
    assert log_ratio / se < -MC_Z_SCORE, f"log var ratio {log_ratio:.3f} ± {se:.3f}"


def test_e10_eq5_as_printed_is_biased(e10):
    """Eq. (5) as printed fails the z-test against ∇J by far, yet matches its own expectation
    E[Σ_t ∇p_G(s_t|h_t) Q_t]: the bias is in the formula, not in the sampling."""
    policy, energy, est = e10
    wrong = z_scores(est["eq5_as_printed"], exact_policy_gradient(policy, energy))
    assert wrong.abs().max() > 4 * MC_Z_SCORE, f"max |z| = {wrong.abs().max():.1f}"
    own = z_scores(est["eq5_as_printed"], exact_eq5_as_printed(policy, energy))
    assert own.abs().max() <= MC_Z_SCORE


@pytest.mark.parametrize("kind", ["tabular", "gru"])
def test_eq5_as_printed_is_gradient_over_v_when_uniform(kind):
    """With every conditional uniform, E[∇p Q] = E[p ∇log p Q] = ∇J / V: direction right, scale not."""
    if kind == "tabular":
        policy, energy = tabular_problem(3, 3, seed=8, policy_scale=0.0)
    else:
        policy, energy = gru_problem(3, 3, seed=8)
        with torch.no_grad():
            policy.head.weight.zero_()
            policy.head.bias.zero_()
    exact = exact_policy_gradient(policy, energy)
    assert exact.abs().max() > 1e-3
    torch.testing.assert_close(exact_eq5_as_printed(policy, energy), exact / 3, atol=AUTOGRAD_TOL, rtol=0)


# --- bad input ----------------------------------------------------------------------------------------
@pytest.fixture
def small():
    policy, energy = tabular_problem(3, 3, seed=0)
    return policy, energy, policy.sample(2, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_bad_rollout_count(small, k):
    policy, energy, seqs = small
    for fn in (mc_q_values, naive_mc_q_values):
        with pytest.raises(ValueError, match="n_rollouts"):
            fn(policy, energy, seqs, n_rollouts=k)
    with pytest.raises(ValueError, match="n_rollouts"):
        mc_policy_gradient(policy, energy, 2, n_rollouts=k)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(mode="td"), "mode"),
        (dict(stream="fast"), "stream"),
        (dict(entropy_weight=float("nan")), "entropy_weight"),
        (dict(chunk_rows=0), "chunk_rows"),
        (dict(precision="bf16"), "precision"),
    ],
)
def test_bad_options(small, kwargs, match):
    policy, energy, seqs = small
    with pytest.raises(ValueError, match=match):
        mc_q_values(policy, energy, seqs, n_rollouts=2, **kwargs)


@pytest.mark.parametrize(
    ("seqs", "match"),
    [
        (torch.zeros(2, 4, dtype=torch.long), "shape"),
        (torch.zeros(3, dtype=torch.long), "shape"),
        (torch.full((2, 3), 3), "outside"),
        (torch.zeros(2, 3), "integer"),
        (torch.zeros(0, 3, dtype=torch.long), "empty"),
    ],
)
def test_bad_sequences(small, seqs, match):
    policy, energy, _ = small
    for call in (
        lambda: mc_q_values(policy, energy, seqs, n_rollouts=2),
        lambda: naive_mc_q_values(policy, energy, seqs, n_rollouts=2),
        lambda: exact_q_values(policy, energy, seqs),
        lambda: exact_reward_to_go(policy, energy, seqs),
    ):
        with pytest.raises(ValueError, match=match):
            call()


def test_mismatched_energy(small):
    policy, _, seqs = small
    with pytest.raises(ValueError, match="same sequence space"):
        mc_q_values(policy, TabularEnergy(2, 3), seqs, n_rollouts=2)
    with pytest.raises(ValueError, match="same sequence space"):
        exact_policy_gradient(policy, TabularEnergy(3, 2))


def test_bad_gradient_options(small):
    policy, energy, _ = small
    with pytest.raises(ValueError, match="n_samples"):
        mc_policy_gradient(policy, energy, 0, n_rollouts=2)
    with pytest.raises(ValueError, match="baseline"):
        mc_policy_gradient(policy, energy, 4, n_rollouts=2, baseline="median")
    with pytest.raises(ValueError, match="n_samples >= 2"):
        mc_policy_gradient(policy, energy, 1, n_rollouts=2, baseline="leave_one_out")
    with pytest.raises(ValueError, match="shape"):
        mc_policy_gradient(policy, energy, 4, n_rollouts=2, baseline=lambda s: torch.zeros(4))
    with pytest.raises(ValueError, match="mode"):
        mc_policy_gradient(policy, energy, 4, n_rollouts=2, mode="td")


def test_exact_routes_refuse_large_spaces():
    policy = GRUPolicy(50, 5, embed_dim=2, hidden_dim=2)
    energy = CNNEnergy(50, 5, embed_dim=2, filter_sizes=(2,), num_filters=(2,))
    seqs = torch.zeros(1, 5, dtype=torch.long)
    with pytest.raises(EnumerationTooLargeError, match="V\\^T"):
        exact_q_values(policy, energy, seqs)
    with pytest.raises(EnumerationTooLargeError, match="mc_policy_gradient"):
        exact_policy_gradient(policy, energy)
    assert mc_q_values(policy, energy.eval(), seqs, n_rollouts=2).shape == (1, 5)
