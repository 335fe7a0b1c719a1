"""The two-step procedure of paper §4 (eqs. 16–21), checked exactly on tiny problems (E4, E5, E6)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXACT_TOL, FINITE_DIFF_TOL
from hypothesis import given
from hypothesis import strategies as st
from scipy.linalg import null_space
from strategies import custom_feature_maps, demos, distributions, problems

from maxent_il.divergences import entropy
from maxent_il.dynamic import soft_bellman
from maxent_il.features import StateActionFeatures
from maxent_il.gibbs import GibbsModel, kl_divergence
from maxent_il.gradient_gap import gradient_gap_bound
from maxent_il.likelihood import demo_moments, log_likelihood_and_gradient
from maxent_il.q_step import exact_q_step, inexact_q_step, q_objective
from maxent_il.space import SequenceSpace
from maxent_il.tabular_q import TabularQ
from maxent_il.two_step import (
    approximate_gradient,
    approximate_log_likelihood,
    c_step,
    c_step_objective_is_unbounded,
    exact_ll_ascent,
    two_step,
)

#: a gap "well above tolerance": four orders of magnitude over EXACT_TOL.
GENERIC_GAP = 1e4 * EXACT_TOL


def _random_q(space: SequenceSpace, seed: int, scale: float = 1.0) -> TabularQ:
    rng = np.random.default_rng(seed)
    return TabularQ(space, rng.normal(scale=scale, size=TabularQ.n_logits(space)))


# --- E5: eq. (16) vs eq. (15) ----------------------------------------------------------------------
@given(problems(), st.data())
def test_approximate_gradient_equals_eq15_at_p(problem, data) -> None:
    """(16) with q = P_θ is the exact gradient (15), for the tabular q and for the raw vector P_θ."""
    features, theta = problem
    target = demo_moments(features, data.draw(demos(features.space)))
    l2 = data.draw(st.sampled_from([0.0, 0.3]))
    _, grad15 = log_likelihood_and_gradient(features, theta, target, l2=l2)  # DP route
    q = exact_q_step(features, theta).q
    np.testing.assert_allclose(
        approximate_gradient(features, theta, target, q, l2=l2), grad15, atol=EXACT_TOL
    )
    p = GibbsModel(features, theta).probabilities()
    np.testing.assert_allclose(
        approximate_gradient(features, theta, target, p, l2=l2), grad15, atol=EXACT_TOL
    )
    gap = gradient_gap_bound(features, q, theta)
    assert gap.gap <= EXACT_TOL and gap.kl <= EXACT_TOL and gap.pinsker_bound <= 1e-5


@given(problems(), st.data())
def test_gradient_gap_within_tv_and_pinsker_bounds(problem, data) -> None:
    """For any q: |gap_i| ≤ range_i·TV, and gap ≤ range·TV ≤ ‖f‖_∞·2TV ≤ ‖f‖_∞·√(2 KL); gap > 0."""
    features, theta = problem
    size = features.space.size
    q = data.draw(distributions(size))
    target = demo_moments(features, data.draw(demos(features.space)))
    gap = gradient_gap_bound(features, q, theta)
    # the gap is (16) − (15), computed here by the two public routes
    diff = (
        approximate_gradient(features, theta, target, q)
        - log_likelihood_and_gradient(features, theta, target)[1]
    )
    np.testing.assert_allclose(gap.difference, diff, atol=EXACT_TOL)
    assert gap.gap == pytest.approx(np.abs(diff).max(), abs=EXACT_TOL)
    p = GibbsModel(features, theta).probabilities()
    assert gap.tv == pytest.approx(0.5 * np.abs(q - p).sum(), abs=EXACT_TOL)
    assert gap.kl == pytest.approx(kl_divergence(q, features, theta), abs=EXACT_TOL)
    # ‖f‖_∞ of state-action counts: the self-loop a→a of 'last' fires T−1 times, all else ≤ once
    T = features.space.horizon
    assert gap.feature_sup == (max(1, T - 1) if features.state == "last" else 1)
    assert np.all(np.abs(gap.difference) <= gap.feature_range * gap.tv + EXACT_TOL)
    assert gap.gap <= gap.range_bound + EXACT_TOL
    assert gap.range_bound <= gap.tv_bound + EXACT_TOL
    assert gap.tv_bound <= gap.pinsker_bound + EXACT_TOL
    assert gap.gap > GENERIC_GAP  # a generic q ≠ P_θ gives a wrong gradient
    if features.state == "history":  # leaf features: E_q f contains q itself
        assert gap.gap >= np.abs(q - p).max() - EXACT_TOL


@pytest.mark.parametrize(
    ("state", "n_items", "horizon"), [("last", 2, 3), ("last", 3, 4), ("time_last", 3, 3)]
)
def test_zero_gap_does_not_imply_q_equals_p(state, n_items, horizon) -> None:
    """(16) = (15) only needs E_q f = E_P f: for non-injective features a q ≠ P_θ has zero gap."""
    features = StateActionFeatures(SequenceSpace(n_items, horizon), state)
    theta = np.random.default_rng(3).normal(scale=0.3, size=features.dim)
    p = GibbsModel(features, theta).probabilities()
    kernel = null_space(features.counts(features.space.all_sequences()).T)  # Fᵀδ = 0 ⇒ Σδ = 0
    assert kernel.shape[1] > 0
    delta = kernel[:, 0]
    neg = delta < 0
    q = p + 0.5 * (p[neg] / -delta[neg]).min() * delta  # as far along δ as keeps q ≥ p/2 > 0
    gap = gradient_gap_bound(features, q, theta)
    assert gap.gap <= EXACT_TOL
    assert gap.kl > 1e3 * EXACT_TOL and gap.tv > 1e3 * EXACT_TOL


# --- E4 via the q-objective (18), (20) -------------------------------------------------------------
@given(problems(), st.data())
def test_q_objective_is_kl_minus_log_z(problem, data) -> None:
    """F(q) = E_q c − H(q) = KL(q‖P) − log Z; F(P) = −log Z ≤ F(q); LL = (17) − H(q) − KL(q‖P)."""
    features, theta = problem
    q = data.draw(distributions(features.space.size))
    model = GibbsModel(features, theta)
    log_z = model.log_partition
    f_q = q_objective(features, theta, q)
    assert f_q == pytest.approx(kl_divergence(q, features, theta) - log_z, abs=EXACT_TOL)
    assert q_objective(features, theta, model.probabilities()) == pytest.approx(-log_z, abs=EXACT_TOL)
    assert exact_q_step(features, theta).objectives[0] == pytest.approx(-log_z, abs=EXACT_TOL)
    assert f_q >= -log_z - EXACT_TOL
    # (17) − H(q) is an upper bound on the exact LL, tight iff q = P_θ
    target = demo_moments(features, data.draw(demos(features.space)))
    ll = log_likelihood_and_gradient(features, theta, target)[0]
    approx = approximate_log_likelihood(features, theta, target, q)
    assert ll == pytest.approx(approx - entropy(q) - kl_divergence(q, features, theta), abs=EXACT_TOL)


@given(problems(), st.data())
def test_approximate_ll_is_the_integral_of_eq16(problem, data) -> None:
    """(17) − (λ/2)‖θ‖² changes by g·δ − (λ/2)‖δ‖² along any δ: (16) is its exact gradient."""
    features, theta = problem
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    q = data.draw(distributions(features.space.size))
    target = demo_moments(features, data.draw(demos(features.space)))
    l2 = data.draw(st.sampled_from([0.0, 0.5]))
    delta = rng.normal(size=features.dim)
    g = approximate_gradient(features, theta, target, q, l2=l2)
    change = approximate_log_likelihood(
        features, theta + delta, target, q, l2=l2
    ) - approximate_log_likelihood(features, theta, target, q, l2=l2)
    assert change == pytest.approx(g @ delta - 0.5 * l2 * delta @ delta, abs=EXACT_TOL * (1 + abs(change)))


# --- the tabular q and its exact gradient ---------------------------------------------------------
@given(problems(), st.integers(0, 2**32 - 1))
def test_tabular_q_is_a_distribution_and_f_matches_enumeration(problem, seed) -> None:
    features, theta = problem
    q = _random_q(features.space, seed)
    probs = q.probabilities()
    assert probs.shape == (features.space.size,) and probs.sum() == pytest.approx(1.0, abs=EXACT_TOL)
    costs = features.costs(theta, features.space.all_sequences())
    value, _ = q.objective_and_gradient(costs)
    assert value == pytest.approx(q_objective(features, theta, probs), abs=EXACT_TOL)
    again = TabularQ.from_log_probs(features.space, q.log_probs())
    np.testing.assert_allclose(again.probabilities(), probs, atol=EXACT_TOL)


@given(problems())
def test_exact_q_step_is_the_soft_bellman_policy(problem) -> None:
    """The exact q-step's conditionals are the soft Bellman policy of P_θ (E12), and q = P_θ."""
    features, theta = problem
    q = exact_q_step(features, theta).q
    np.testing.assert_allclose(q.probabilities(), GibbsModel(features, theta).probabilities(), atol=EXACT_TOL)
    dp = soft_bellman(features, theta)
    V = features.space.n_items
    for t, log_pi in enumerate(q.log_conditionals()):
        prefixes = SequenceSpace(V, t).all_sequences() if t else np.zeros((1, 0), dtype=np.int64)
        np.testing.assert_allclose(log_pi, dp.next_item_log_probs(prefixes), atol=1e3 * EXACT_TOL)


@given(problems(), st.integers(0, 2**32 - 1))
def test_tabular_q_gradient_matches_central_differences(problem, seed) -> None:
    features, theta = problem
    q = _random_q(features.space, seed)
    costs = features.costs(theta, features.space.all_sequences())
    _, grad = q.objective_and_gradient(costs)
    h = 1e-5
    eye = np.eye(grad.size) * h
    fd = np.array(
        [
            (
                TabularQ(q.space, q.logits + e).objective_and_gradient(costs)[0]
                - TabularQ(q.space, q.logits - e).objective_and_gradient(costs)[0]
            )
            / (2 * h)
            for e in eye  # one coordinate per logit (≤ 340), each an exact vectorized pass
        ]
    )
    np.testing.assert_allclose(grad, fd, atol=FINITE_DIFF_TOL)


@given(problems())
def test_tabular_q_gradient_vanishes_at_p(problem) -> None:
    features, theta = problem
    q = exact_q_step(features, theta).q
    _, grad = q.objective_and_gradient(features.costs(theta, features.space.all_sequences()))
    assert np.abs(grad).max() <= EXACT_TOL


@given(problems(), st.integers(0, 2**32 - 1))
def test_inexact_q_steps_decrease_f_and_kl(problem, seed) -> None:
    """Gradient descent on (20) lowers F every step; KL(q_k‖P) = F(q_k) + log Z shrinks."""
    features, theta = problem
    log_z = GibbsModel(features, theta).log_partition
    start = _random_q(features.space, seed, scale=0.5)
    res = inexact_q_step(features, theta, start, n_steps=200, lr=1.0)
    assert res.objectives.shape == (201,)
    assert np.all(np.diff(res.objectives) <= EXACT_TOL)
    kl = res.objectives + log_z
    assert kl[-1] == pytest.approx(kl_divergence(res.q.probabilities(), features, theta), abs=EXACT_TOL)
    assert kl[-1] <= 0.25 * kl[0] + EXACT_TOL
    # warm start: k steps then k more equal 2k steps
    half = inexact_q_step(features, theta, start.logits, n_steps=100, lr=1.0).q
    rest = inexact_q_step(features, theta, half, n_steps=100, lr=1.0).q
    np.testing.assert_allclose(rest.logits, res.q.logits, atol=EXACT_TOL)


@pytest.mark.parametrize("state", ["history", "last", "time_last"])
def test_inexact_q_step_converges_to_p(state) -> None:
    """KL(q_k‖P_θ) → 0 as k grows (V=3, T=3, from the uniform q, lr=2)."""
    features = StateActionFeatures(SequenceSpace(3, 3), state)
    theta = np.random.default_rng(7).normal(size=features.dim)
    log_z = GibbsModel(features, theta).log_partition
    res = inexact_q_step(features, theta, TabularQ.uniform(features.space), n_steps=2000, lr=2.0)
    assert np.all(np.diff(res.objectives) <= EXACT_TOL)
    kl = res.objectives[[0, 10, 100, 1000, 2000]] + log_z
    assert np.all(np.diff(kl) < 0) or kl[-1] <= EXACT_TOL
    assert kl[0] > 0.1 and kl[-1] <= 1e-6


# --- c-step (21) -----------------------------------------------------------------------------------
@given(problems(), st.data())
def test_c_step_objective_is_unbounded(problem, data) -> None:
    """(21) is linear in θ: along g = ∇(17) it equals value(θ) + s‖g‖², so max_θ is +∞."""
    features, theta = problem
    q = data.draw(distributions(features.space.size))
    target = demo_moments(features, data.draw(demos(features.space)))
    ev = c_step_objective_is_unbounded(features, theta, target, q, steps=[0.0, 1.0, 1e2, 1e4])
    np.testing.assert_allclose(ev.values, ev.values[0] + ev.steps * ev.slope, rtol=EXACT_TOL, atol=EXACT_TOL)
    assert ev.slope == pytest.approx(ev.direction @ ev.direction)
    assert ev.is_unbounded == (ev.slope > 0)  # slope 0 only when E_q f = E_demo f (q drawn = demos)
    if ev.is_unbounded:
        assert np.all(np.diff(ev.values) > 0)
    lr = data.draw(st.sampled_from([0.01, 0.3]))
    np.testing.assert_allclose(
        c_step(theta, features, target, q, lr=lr), theta + lr * ev.direction, atol=EXACT_TOL
    )


def test_c_step_objective_is_flat_when_q_matches_the_demos() -> None:
    """The one bounded case: q = the empirical demo distribution gives g = 0 (constant objective)."""
    features = StateActionFeatures(SequenceSpace(3, 3), "last")
    seqs = np.array([[0, 1, 2], [2, 2, 1], [0, 1, 2]])
    q = np.bincount(features.space.encode(seqs), minlength=features.space.size) / len(seqs)
    ev = c_step_objective_is_unbounded(features, np.ones(features.dim), demo_moments(features, seqs), q)
    assert ev.slope <= EXACT_TOL and not ev.is_unbounded


# --- E6: the two-step loop vs exact LL ascent -------------------------------------------------------
@given(problems(), st.data())
def test_two_step_with_exact_q_step_reproduces_ll_ascent(problem, data) -> None:
    features, theta0 = problem
    sample = data.draw(demos(features.space))
    l2 = data.draw(st.sampled_from([0.0, 0.2]))
    target = demo_moments(features, sample)
    ref = exact_ll_ascent(features, target, n_iters=20, lr=0.1, l2=l2, theta0=theta0)
    res = two_step(features, sample, n_iters=20, lr=0.1, l2=l2, theta0=theta0)
    assert res.thetas.shape == ref.thetas.shape == (21, features.dim)
    np.testing.assert_allclose(res.thetas, ref.thetas, atol=EXACT_TOL)
    np.testing.assert_allclose(res.exact_ll, ref.log_likelihoods, atol=EXACT_TOL)
    assert np.all(res.kl <= EXACT_TOL) and np.all(res.gradient_gap <= EXACT_TOL)
    np.testing.assert_allclose(res.exact_ll[:-1], res.approx_ll - res.q_entropy - res.kl, atol=EXACT_TOL)


@given(problems(), st.data())
def test_two_step_with_inexact_q_step_deviates_within_the_gap_bound(problem, data) -> None:
    """θ_{t+1} − (θ_t + lr∇LL(θ_t)) = lr(E_q f − E_P f): each step deviates by lr·gap ≤ lr·bounds."""
    features, theta0 = problem
    target = demo_moments(features, data.draw(demos(features.space)))
    k = data.draw(st.integers(1, 3))
    lr = 0.1
    res = two_step(
        features, demo_moments=target, n_iters=10, lr=lr, q_step="inexact", k=k, q_lr=0.5, theta0=theta0
    )
    for t in range(10):
        _, grad = log_likelihood_and_gradient(features, res.thetas[t], target)
        dev = np.abs(res.thetas[t + 1] - res.thetas[t] - lr * grad).max()
        assert dev == pytest.approx(lr * res.gradient_gap[t], abs=EXACT_TOL)
        assert dev <= lr * res.range_bound[t] + EXACT_TOL
        assert res.range_bound[t] <= res.tv_bound[t] + EXACT_TOL <= res.pinsker_bound[t] + 2 * EXACT_TOL
    np.testing.assert_allclose(res.exact_ll[:-1], res.approx_ll - res.q_entropy - res.kl, atol=EXACT_TOL)
    minus_log_z = res.exact_ll[:-1] + res.thetas[:-1] @ target  # LL = −θ·E_demo f − log Z
    np.testing.assert_allclose(res.q_objective, res.kl + minus_log_z, atol=EXACT_TOL)  # F = KL − log Z
    ref = exact_ll_ascent(features, target, n_iters=10, lr=lr, theta0=theta0)
    assert res.gradient_gap[0] > GENERIC_GAP  # q_0 (uniform, k steps) ≠ P_θ0 for a generic θ0
    assert np.abs(res.thetas - ref.thetas).max() > GENERIC_GAP


@given(custom_feature_maps(), st.data())
def test_non_decomposable_features(features, data) -> None:
    """Everything above holds for a custom (non-decomposable) map, where only enumeration applies."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    theta = rng.normal(size=features.dim)
    sample = data.draw(demos(features.space))
    target = demo_moments(features, sample)
    q = data.draw(distributions(features.space.size))
    gap = gradient_gap_bound(features, q, theta)
    assert gap.gap <= gap.range_bound + EXACT_TOL <= gap.tv_bound + 2 * EXACT_TOL
    assert gap.tv_bound <= gap.pinsker_bound + EXACT_TOL
    exact = exact_q_step(features, theta).q
    assert gradient_gap_bound(features, exact, theta).gap <= EXACT_TOL
    costs = features.costs(theta, features.space.all_sequences())
    tab = _random_q(features.space, int(rng.integers(2**32)))
    _, grad = tab.objective_and_gradient(costs)
    h, i = 1e-5, int(rng.integers(grad.size))
    e = np.zeros(grad.size)
    e[i] = h
    plus = TabularQ(tab.space, tab.logits + e).objective_and_gradient(costs)[0]
    minus = TabularQ(tab.space, tab.logits - e).objective_and_gradient(costs)[0]
    assert grad[i] == pytest.approx((plus - minus) / (2 * h), abs=FINITE_DIFF_TOL)
    ref = exact_ll_ascent(features, target, n_iters=10, lr=0.1, theta0=theta)
    res = two_step(features, sample, n_iters=10, lr=0.1, theta0=theta)
    np.testing.assert_allclose(res.thetas, ref.thetas, atol=EXACT_TOL)


# --- bad input -------------------------------------------------------------------------------------
def test_bad_input_raises_clear_errors() -> None:
    features = StateActionFeatures(SequenceSpace(2, 2), "last")
    theta = np.zeros(features.dim)
    target = np.zeros(features.dim)
    good_q = np.full(4, 0.25)
    for bad_q, match in [
        (np.full(3, 1 / 3), "shape"),
        (np.array([0.5, 0.5, 0.5, -0.5]), "non-negative"),
        (np.full(4, 0.3), "sums to"),
        (np.array([np.nan, 0.5, 0.25, 0.25]), "finite"),
    ]:
        for fn in (approximate_gradient, approximate_log_likelihood):
            with pytest.raises(ValueError, match=match):
                fn(features, theta, target, bad_q)
        with pytest.raises(ValueError, match=match):
            gradient_gap_bound(features, bad_q, theta)
    for lr in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="lr must be"):
            c_step(theta, features, target, good_q, lr=lr)
        with pytest.raises(ValueError, match="lr must be"):
            exact_ll_ascent(features, target, n_iters=2, lr=lr)
        with pytest.raises(ValueError, match="q-step size"):
            inexact_q_step(features, theta, TabularQ.uniform(features.space), n_steps=1, lr=lr)
        with pytest.raises(ValueError, match="lr must be"):
            two_step(features, demo_moments=target, n_iters=2, lr=lr)
        with pytest.raises(ValueError, match="q_lr must be"):
            two_step(features, demo_moments=target, n_iters=2, lr=0.1, q_step="inexact", q_lr=lr)
    with pytest.raises(ValueError, match="n_steps"):
        inexact_q_step(features, theta, TabularQ.uniform(features.space), n_steps=0, lr=0.1)
    with pytest.raises(ValueError, match="k must be"):
        two_step(features, demo_moments=target, n_iters=2, lr=0.1, q_step="inexact", k=0)
    with pytest.raises(ValueError, match="unknown q_step 'em'"):
        two_step(features, demo_moments=target, n_iters=2, lr=0.1, q_step="em")
    with pytest.raises(ValueError, match="n_iters"):
        two_step(features, demo_moments=target, n_iters=0, lr=0.1)
    with pytest.raises(ValueError, match="exactly one of"):
        two_step(features, [[0, 1]], demo_moments=target, n_iters=2, lr=0.1)
    with pytest.raises(ValueError, match="exactly one of"):
        two_step(features, n_iters=2, lr=0.1)
    with pytest.raises(ValueError, match="demo_moments must have shape"):
        approximate_gradient(features, theta, np.zeros(3), good_q)
    with pytest.raises(ValueError, match="logits must have shape"):
        TabularQ(features.space, np.zeros(5))
    with pytest.raises(ValueError, match="finite"):
        TabularQ(features.space, np.array([0, 0, 0, 0, 0, np.inf]))
    other = TabularQ.uniform(SequenceSpace(3, 2))
    with pytest.raises(ValueError, match="lives on"):
        two_step(features, demo_moments=target, n_iters=2, lr=0.1, q_step="inexact", q0=other)
    with pytest.raises(ValueError, match="lives on"):
        gradient_gap_bound(features, other, theta)


@pytest.mark.parametrize("q_step", ["exact", "inexact"])
def test_two_step_update_is_one_c_step_after_the_q_step(q_step: str) -> None:
    """One iteration of the loop is exactly: q-step at θ_0, then :func:`c_step` with that q (eq. 21)."""
    features = StateActionFeatures(SequenceSpace(2, 3), "last")
    rng = np.random.default_rng(5)
    target = features.weighted_counts(features.space.all_sequences(), rng.dirichlet(np.ones(8)))
    theta0 = rng.normal(size=features.dim)
    res = two_step(
        features, demo_moments=target, n_iters=1, lr=0.3, q_step=q_step, k=3, q_lr=0.2, l2=0.1, theta0=theta0
    )
    if q_step == "exact":
        q = exact_q_step(features, theta0).q
    else:
        q = inexact_q_step(features, theta0, TabularQ.uniform(features.space), n_steps=3, lr=0.2).q
    np.testing.assert_array_equal(res.q.logits, q.logits)
    expected = c_step(theta0, features, target, q, lr=0.3, l2=0.1)
    np.testing.assert_allclose(res.thetas[1], expected, rtol=0, atol=EXACT_TOL)
    assert res.q_objective[0] == pytest.approx(q_objective(features, theta0, q), abs=EXACT_TOL)
