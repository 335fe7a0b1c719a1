"""Exact log-likelihood, its gradient (eq. 15; claim E2) and the dual fit (moment matching, E3)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import EXACT_TOL, FINITE_DIFF_TOL, SOLVER_TOL
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import custom_feature_maps, demos, problems, seeds, small_problems, unigram_features

from maxent_il.dynamic import soft_bellman
from maxent_il.features import CustomFeatures, FeatureMap, StateActionFeatures
from maxent_il.gibbs import GibbsModel
from maxent_il.likelihood import (
    Demonstrations,
    demo_moments,
    log_likelihood,
    log_likelihood_and_gradient,
    log_likelihood_gradient,
    model_moments,
)
from maxent_il.solver import MaxEntFit, UnboundedOptimumWarning, fit_maxent
from maxent_il.space import SequenceSpace

FD_STEP = 1e-5


def exact_ll(features: FeatureMap, theta: np.ndarray, target: np.ndarray, l2: float) -> float:
    """LL by enumeration: −θ·target − log Z(θ) − (λ/2)‖θ‖², log Z from the Gibbs pass."""
    return log_likelihood_and_gradient(features, theta, target, l2=l2, method="enumerate")[0]


def check_gradient_by_finite_differences(
    features: FeatureMap, theta: np.ndarray, target: np.ndarray, l2: float, rng: np.random.Generator
) -> None:
    """Eq. (15) against central differences of the exact LL: every coordinate when d ≤ 24, else
    24 random coordinates, plus three random directions (which catch any wrong component)."""
    methods = ["enumerate", "auto"] + (["dp"] if features.is_decomposable else [])
    grads = {m: log_likelihood_and_gradient(features, theta, target, l2=l2, method=m)[1] for m in methods}
    for m in methods[1:]:
        np.testing.assert_allclose(grads[m], grads["enumerate"], rtol=EXACT_TOL, atol=EXACT_TOL)
    grad = grads["enumerate"]
    coords = np.arange(features.dim) if features.dim <= 24 else rng.choice(features.dim, 24, replace=False)
    directions = [np.eye(features.dim)[i] for i in coords]
    directions += [d / np.linalg.norm(d) for d in rng.normal(size=(3, features.dim))]
    for u in directions:
        fd = (
            exact_ll(features, theta + FD_STEP * u, target, l2)
            - exact_ll(features, theta - FD_STEP * u, target, l2)
        ) / (2 * FD_STEP)
        assert abs(fd - grad @ u) <= FINITE_DIFF_TOL * max(1.0, abs(fd)), (fd, grad @ u)


# --- the log-likelihood and eq. (15) --------------------------------------------------------------
@settings(max_examples=15)
@given(problems(), st.sampled_from([0.0, 0.3]), seeds())
def test_gradient_is_eq_15_by_finite_differences(
    problem: tuple[StateActionFeatures, np.ndarray], l2: float, seed: int
) -> None:
    features, theta = problem
    rng = np.random.default_rng(seed)
    target = demo_moments(features, rng.integers(0, features.space.n_items, size=(7, features.space.horizon)))
    check_gradient_by_finite_differences(features, theta, target, l2, rng)


@settings(max_examples=15)
@given(custom_feature_maps(), st.sampled_from([0.0, 0.3]), seeds())
def test_gradient_of_custom_maps_is_eq_15_by_finite_differences(
    features: CustomFeatures, l2: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=features.dim)
    target = demo_moments(features, rng.integers(0, features.space.n_items, size=(5, features.space.horizon)))
    check_gradient_by_finite_differences(features, theta, target, l2, rng)


@given(problems(), st.data(), st.sampled_from([0.0, 0.5]))
def test_log_likelihood_is_the_mean_log_probability_of_the_demos(
    problem: tuple[StateActionFeatures, np.ndarray], data: st.DataObject, l2: float
) -> None:
    features, theta = problem
    seqs = data.draw(demos(features.space))
    weights = np.random.default_rng(data.draw(seeds())).random(seqs.shape[0]) + 0.1
    model = GibbsModel(features, theta)
    expected = weights @ model.log_prob(seqs) / weights.sum() - 0.5 * l2 * theta @ theta
    for method in ("auto", "enumerate", "dp"):
        ll = log_likelihood(features, theta, seqs, weights=weights, l2=l2, method=method)
        np.testing.assert_allclose(ll, expected, rtol=EXACT_TOL, atol=EXACT_TOL)
    grad = log_likelihood_gradient(features, theta, seqs, weights=weights, l2=l2)
    counts = features.counts(seqs)
    np.testing.assert_allclose(
        grad,
        -(weights @ counts) / weights.sum() + model.expected_features - l2 * theta,
        rtol=EXACT_TOL,
        atol=EXACT_TOL,
    )


@given(problems())
def test_model_moments_agree_between_routes(problem: tuple[StateActionFeatures, np.ndarray]) -> None:
    features, theta = problem
    lz_dp, m_dp = model_moments(features, theta, method="dp")
    lz_en, m_en = model_moments(features, theta, method="enumerate")
    np.testing.assert_allclose([lz_dp, *m_dp], [lz_en, *m_en], rtol=EXACT_TOL, atol=EXACT_TOL)


def test_demonstrations_normalize_weights() -> None:
    features = StateActionFeatures(SequenceSpace(2, 2), "last")
    d = Demonstrations.from_any(features, [[0, 1], [1, 1]], [1.0, 3.0])
    np.testing.assert_allclose(d.weights, [0.25, 0.75])
    np.testing.assert_allclose(Demonstrations.from_any(features, [[0, 1], [1, 1]]).weights, [0.5, 0.5])
    np.testing.assert_allclose(
        demo_moments(features, d), 0.25 * features.counts([[0, 1]])[0] + 0.75 * features.counts([[1, 1]])[0]
    )


# --- E3: moment matching at the optimum -----------------------------------------------------------
@settings(max_examples=12)
@given(small_problems())
def test_fit_matches_the_moments_of_an_interior_target(
    problem: tuple[StateActionFeatures, np.ndarray],
) -> None:
    """Target = E_{P_θ0} f of a full-support Gibbs model: the fit recovers P_θ0 (θ up to gauge)."""
    features, theta0 = problem
    truth = GibbsModel(features, theta0)
    fit = fit_maxent(features, target_moments=truth.expected_features)
    assert fit.converged and fit.unused_features == ()
    fitted = GibbsModel(features, fit.theta)
    np.testing.assert_allclose(fitted.expected_features, truth.expected_features, atol=SOLVER_TOL)
    np.testing.assert_allclose(fitted.probabilities(), truth.probabilities(), atol=SOLVER_TOL)
    assert abs(fit.entropy - truth.entropy) <= SOLVER_TOL


@settings(max_examples=8)
@given(small_problems(max_sequences=27))
def test_fit_from_weighted_demos_covering_the_space(problem: tuple[StateActionFeatures, np.ndarray]) -> None:
    """Every sequence as a demo, weighted by P_θ0: the demo route reaches the same optimum."""
    features, theta0 = problem
    truth = GibbsModel(features, theta0)
    fit = fit_maxent(features, features.space.all_sequences(), weights=truth.probabilities())
    assert fit.converged
    np.testing.assert_allclose(fit.model_moments, fit.demo_moments, atol=SOLVER_TOL)
    np.testing.assert_allclose(
        GibbsModel(features, fit.theta).probabilities(), truth.probabilities(), atol=SOLVER_TOL
    )


@settings(max_examples=12)
@given(small_problems(), st.data(), st.sampled_from([0.05, 1.0]))
def test_l2_optimum_satisfies_stationarity(
    problem: tuple[StateActionFeatures, np.ndarray], data: st.DataObject, l2: float
) -> None:
    """With λ > 0 the optimum is finite even for sparse demos: E_P f − E_demo f = λθ*."""
    features, _ = problem
    seqs = data.draw(demos(features.space, max_n=8))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnboundedOptimumWarning)
        fit = fit_maxent(features, seqs, l2=l2)
    assert fit.gradient_norm <= SOLVER_TOL
    model = GibbsModel(features, fit.theta)  # E_P f by enumeration, not the fit's own field
    np.testing.assert_allclose(
        model.expected_features - demo_moments(features, seqs), l2 * fit.theta, atol=SOLVER_TOL
    )


# --- fit results ----------------------------------------------------------------------------------
@pytest.mark.parametrize("state", ["last", "time_last", "history"])
def test_fit_from_samples_has_consistent_fields(state: str, rng: np.random.Generator) -> None:
    features = StateActionFeatures(SequenceSpace(3, 3), state)
    hidden = GibbsModel(features, rng.normal(size=features.dim))
    samples = hidden.sample(300, rng=rng)
    fit = fit_maxent(features, samples, l2=0.01)
    model = GibbsModel(features, fit.theta)
    close = {"rtol": EXACT_TOL, "atol": EXACT_TOL}
    np.testing.assert_allclose(fit.demo_moments, demo_moments(features, samples), **close)
    np.testing.assert_allclose(fit.model_moments, model.expected_features, **close)
    np.testing.assert_allclose(fit.log_partition, model.log_partition, **close)
    np.testing.assert_allclose(fit.entropy, fit.log_partition + fit.theta @ fit.model_moments, **close)
    np.testing.assert_allclose(fit.entropy, model.entropy, **close)
    ll, grad = log_likelihood_and_gradient(features, fit.theta, fit.demo_moments, l2=0.01)
    np.testing.assert_allclose(fit.log_likelihood, ll, **close)
    np.testing.assert_allclose(
        fit.log_likelihood, log_likelihood(features, fit.theta, samples, l2=0.01), **close
    )
    assert fit.gradient_norm == pytest.approx(np.abs(grad).max(), rel=EXACT_TOL, abs=EXACT_TOL)
    assert fit.converged == (fit.gradient_norm <= 1e-8)
    assert fit.moment_gap == pytest.approx(np.abs(fit.model_moments - fit.demo_moments).max())
    assert fit.iterations >= 1 and isinstance(fit.message, str)
    # the fit is a maximum: LL(θ*) ≥ LL at θ = 0 and at the hidden θ
    assert fit.log_likelihood >= log_likelihood(features, np.zeros(features.dim), samples, l2=0.01)
    assert fit.log_likelihood >= log_likelihood(features, hidden.theta, samples, l2=0.01)


def test_converged_flag_follows_gtol() -> None:
    features = StateActionFeatures(SequenceSpace(3, 2), "last")
    target = GibbsModel(features, np.random.default_rng(1).normal(size=features.dim)).expected_features
    stopped = fit_maxent(features, target_moments=target, max_iter=2)
    assert stopped.converged == (stopped.gradient_norm <= 1e-8)
    assert not stopped.converged and stopped.iterations <= 2
    loose = fit_maxent(features, target_moments=target, gtol=1e-4)
    assert loose.converged and loose.gradient_norm <= 1e-4
    done = fit_maxent(features, target_moments=target)
    assert done.converged and done.gradient_norm <= 1e-8
    assert done.iterations > loose.iterations


@settings(max_examples=10)
@given(small_problems(), st.data())
def test_enumerate_and_dp_fits_agree(
    problem: tuple[StateActionFeatures, np.ndarray], data: st.DataObject
) -> None:
    features, _ = problem
    seqs = data.draw(demos(features.space, max_n=10))
    fits = [fit_maxent(features, seqs, l2=0.1, method=m) for m in ("enumerate", "dp")]
    assert all(f.converged for f in fits)
    # λ > 0 makes the optimum unique, so θ itself must agree
    np.testing.assert_allclose(fits[0].theta, fits[1].theta, atol=SOLVER_TOL)
    np.testing.assert_allclose(fits[0].log_likelihood, fits[1].log_likelihood, atol=SOLVER_TOL)


def test_fit_with_a_custom_map_recovers_unigram_frequencies() -> None:
    """Unigram counts: the MaxEnt fit is iid with the demos' item frequencies (eq. 6 in closed form)."""
    space = SequenceSpace(3, 3)
    features = unigram_features(space)
    seqs = np.array([[0, 1, 2], [0, 0, 1], [2, 0, 0]])
    fit = fit_maxent(features, seqs)
    freq = np.bincount(seqs.ravel(), minlength=3) / seqs.size
    model = GibbsModel(features, fit.theta)
    np.testing.assert_allclose(model.expected_features, 3 * freq, atol=SOLVER_TOL)
    iid = np.prod(freq[space.all_sequences()], axis=1)
    np.testing.assert_allclose(model.probabilities(), iid, atol=SOLVER_TOL)


# --- the unbounded optimum ------------------------------------------------------------------------
def test_warns_when_a_feature_never_occurs_in_the_demos() -> None:
    features = StateActionFeatures(SequenceSpace(3, 2), "last")
    seqs = [[0, 1], [1, 0], [2, 2]]  # never starts with... every start occurs; transition 0->0 never
    unused = np.flatnonzero(demo_moments(features, seqs) == 0)
    pattern = rf"{unused.size} feature\(s\) are never used by the demonstrations"
    with pytest.warns(UnboundedOptimumWarning, match=pattern) as record:
        fit = fit_maxent(features, seqs, max_iter=50)
    message = str(record[0].message)
    for i in unused[:8]:
        assert features.name(int(i)) in message
    assert "l2 > 0" in message
    assert fit.unused_features == tuple(int(i) for i in unused)
    # their cost grows: the model gives the unused pairs less mass than the uniform model does
    uniform = GibbsModel(features, np.zeros(features.dim)).expected_features
    assert np.all(fit.model_moments[unused] < 0.01 * uniform[unused])


def test_warning_lists_at_most_eight_names() -> None:
    features = StateActionFeatures(SequenceSpace(3, 3), "history")
    with pytest.warns(UnboundedOptimumWarning, match=r"and \d+ more"):
        fit_maxent(features, [[0, 0, 0]], max_iter=5)


def test_warns_for_a_custom_feature_at_its_minimum() -> None:
    features = unigram_features(SequenceSpace(3, 2))
    pattern = r"put 1 feature\(s\) at the smallest value any sequence gives them \(count\[2\]\)"
    with pytest.warns(UnboundedOptimumWarning, match=pattern):
        fit = fit_maxent(features, [[0, 1], [1, 1]], max_iter=50)
    assert fit.unused_features == (2,)


def no_unbounded_warning(*args: object, **kwargs: object) -> MaxEntFit:
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnboundedOptimumWarning)
        fit = fit_maxent(*args, **kwargs)  # type: ignore[arg-type]
    return fit


def test_no_warning_with_l2_or_when_every_feature_occurs() -> None:
    features = StateActionFeatures(SequenceSpace(2, 2), "last")
    fit = no_unbounded_warning(features, [[0, 0]], l2=0.1)
    assert fit.unused_features != ()  # still reported, but the optimum is finite
    assert fit.converged
    every_pair = [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert no_unbounded_warning(features, every_pair).unused_features == ()


def test_no_warning_for_features_that_no_sequence_has() -> None:
    """'last' with T = 1: transitions occur in no sequence, so their gradient is 0, not unbounded."""
    features = StateActionFeatures(SequenceSpace(3, 1), "last")
    fit = no_unbounded_warning(features, [[0], [1], [2]])
    assert fit.unused_features == ()
    assert fit.converged
    np.testing.assert_allclose(fit.theta[:9], 0.0)


def test_no_warning_for_signed_custom_features_inside_their_range() -> None:
    space = SequenceSpace(2, 2)
    # one signed feature f(S) = s_1 − s_2 ∈ {−1, 0, 1}
    features = CustomFeatures(space, lambda s: (s[:, :1] - s[:, 1:]).astype(float), 1)
    fit = no_unbounded_warning(features, [[0, 1], [0, 0], [1, 1]])  # mean −1/3: inside (−1, 1)
    assert fit.unused_features == () and fit.converged


# --- bad input ------------------------------------------------------------------------------------
def test_fit_rejects_bad_arguments() -> None:
    features = StateActionFeatures(SequenceSpace(2, 2), "last")
    seqs = [[0, 1], [1, 0]]
    with pytest.raises(ValueError, match=r"l2 must be a finite non-negative number, got -0\.1"):
        fit_maxent(features, seqs, l2=-0.1)
    with pytest.raises(ValueError, match="l2 must be a finite non-negative number, got nan"):
        fit_maxent(features, seqs, l2=float("nan"))
    with pytest.raises(ValueError, match="l2 must be a finite non-negative number, got 'big'"):
        fit_maxent(features, seqs, l2="big")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="give exactly one of demos or target_moments"):
        fit_maxent(features)
    with pytest.raises(ValueError, match="give exactly one of demos or target_moments"):
        fit_maxent(features, seqs, target_moments=np.zeros(6))
    with pytest.raises(ValueError, match=r"target_moments must have shape \(6,\).*got \(5,\)"):
        fit_maxent(features, target_moments=np.zeros(5))
    with pytest.raises(ValueError, match=r"unknown method 'exact'; choose one of 'auto', 'enumerate', 'dp'"):
        fit_maxent(features, seqs, method="exact", l2=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"demos\[1, 0\] = 2 is outside the item range 0\.\.1"):
        fit_maxent(features, [[0, 1], [2, 0]])
    with pytest.raises(ValueError, match=r"theta must have shape \(6,\)"):
        fit_maxent(features, seqs, l2=1.0, theta0=np.zeros(3))


@pytest.mark.parametrize(
    ("weights", "pattern"),
    [
        ([1.0], r"weights must have shape \(2,\) like the demos, got \(1,\)"),
        ([1.0, -0.5], r"weights\[1\] = -0\.5; weights must be finite and non-negative"),
        ([np.nan, 1.0], r"weights\[0\] = nan; weights must be finite"),
        ([0.0, 0.0], "weights are all zero"),
    ],
)
def test_bad_demo_weights_are_named(weights: list[float], pattern: str) -> None:
    features = StateActionFeatures(SequenceSpace(2, 2), "last")
    with pytest.raises(ValueError, match=pattern):
        fit_maxent(features, [[0, 1], [1, 0]], weights=weights)
    with pytest.raises(ValueError, match=pattern):
        demo_moments(features, [[0, 1], [1, 0]], weights)


def test_likelihood_functions_reject_bad_arguments() -> None:
    features = StateActionFeatures(SequenceSpace(2, 2), "time_last")
    theta, target = np.zeros(features.dim), np.zeros(features.dim)
    with pytest.raises(ValueError, match=r"unknown method 'fast'"):
        model_moments(features, theta, method="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"target_moments must have shape \(6,\)"):
        log_likelihood_and_gradient(features, theta, target[:3])
    with pytest.raises(ValueError, match=r"theta\[0\] = inf is not finite"):
        log_likelihood_and_gradient(features, np.r_[np.inf, theta[1:]], target)
    with pytest.raises(ValueError, match="l2 must be a finite non-negative number, got -1"):
        log_likelihood_and_gradient(features, theta, target, l2=-1)
    with pytest.raises(ValueError, match="needs decomposable state-action features"):
        model_moments(unigram_features(SequenceSpace(2, 2)), np.zeros(2), method="dp")
    with pytest.raises(ValueError, match="needs decomposable state-action features"):
        fit_maxent(unigram_features(SequenceSpace(2, 2)), [[0, 1]], l2=1.0, method="dp")
    with pytest.raises(ValueError, match="demos is empty"):
        log_likelihood(features, theta, [])


def test_fit_reaches_gtol_when_the_likelihood_is_large() -> None:
    """|LL| ≈ 74 (V=20, T=30, DP path): LL's rounding must not stop the fit short of gtol."""
    rng = np.random.default_rng(0)
    features = StateActionFeatures(SequenceSpace(20, 30), "last")
    samples = soft_bellman(features, rng.normal(size=features.dim)).sample(2000, rng=rng)
    fit = fit_maxent(features, samples, l2=1e-3)
    assert abs(fit.log_likelihood) > 50
    assert fit.converged and fit.gradient_norm <= 1e-8
    model = soft_bellman(features, fit.theta, method="log")  # the other DP route for E_P f
    np.testing.assert_allclose(
        model.expected_features - demo_moments(features, samples), 1e-3 * fit.theta, atol=1e-8
    )


def test_newton_and_lbfgs_reach_the_same_optimum_and_newton_handles_ill_conditioning() -> None:
    """On `history` features rarely reached prefixes make LL nearly flat in their θ: L-BFGS needs
    hundreds of iterations (here it stops at its cap), Newton with the exact Hessian Cov_P(f) a
    handful; both give the same moments where both converge."""
    space = SequenceSpace(4, 3)
    features = StateActionFeatures(space, "history")
    theta0 = np.clip(np.random.default_rng(3).normal(scale=2.0, size=features.dim), -3, 3)
    target = GibbsModel(features, theta0).expected_features
    newton = fit_maxent(features, target_moments=target, optimizer="newton")
    assert newton.converged and newton.iterations < 30
    lbfgs = fit_maxent(features, target_moments=target, optimizer="lbfgs", max_iter=100)
    assert lbfgs.gradient_norm > newton.gradient_norm
    easy = StateActionFeatures(SequenceSpace(3, 3), "last")
    t_easy = GibbsModel(easy, np.random.default_rng(4).normal(size=easy.dim)).expected_features
    a = fit_maxent(easy, target_moments=t_easy, optimizer="newton")
    b = fit_maxent(easy, target_moments=t_easy, optimizer="lbfgs")
    assert a.converged and b.converged
    np.testing.assert_allclose(a.model_moments, b.model_moments, atol=SOLVER_TOL)
    with pytest.raises(ValueError, match="unknown optimizer"):
        fit_maxent(easy, target_moments=t_easy, optimizer="adam")
