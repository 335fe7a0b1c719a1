"""The max-entropy primal (7) solved directly, against the Gibbs form (8) of the dual fit (claim E1)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import EXACT_TOL, SOLVER_TOL
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import null_space
from strategies import demos, seeds, small_problems, spaces, unigram_features

from maxent_il.divergences import entropy
from maxent_il.features import StateActionFeatures
from maxent_il.gibbs import GibbsModel
from maxent_il.likelihood import demo_moments
from maxent_il.primal import MAX_PRIMAL_SEQUENCES, solve_primal
from maxent_il.solver import UnboundedOptimumWarning, fit_maxent
from maxent_il.space import SequenceSpace


# --- E1: primal = Gibbs form of the dual optimum (interior case) ----------------------------------
@settings(max_examples=15)
@given(small_problems())
def test_primal_solution_is_the_gibbs_distribution_of_the_dual_fit(
    problem: tuple[StateActionFeatures, np.ndarray],
) -> None:
    """Target E_{P_θ0} f of a full-support model: the θ-free primal solve and the dual fit give
    one distribution, and equal entropies (strong duality)."""
    features, theta0 = problem
    truth = GibbsModel(features, theta0)
    target = truth.expected_features
    primal = solve_primal(features, target)
    fit = fit_maxent(features, target_moments=target)
    assert primal.success and fit.converged
    assert primal.constraint_violation <= EXACT_TOL
    dual = GibbsModel(features, fit.theta).probabilities()
    np.testing.assert_allclose(primal.probabilities, dual, atol=SOLVER_TOL)
    assert abs(primal.entropy - fit.entropy) <= SOLVER_TOL
    # both equal the model the target came from (the max-entropy solution is unique)
    np.testing.assert_allclose(primal.probabilities, truth.probabilities(), atol=SOLVER_TOL)
    assert primal.entropy == pytest.approx(entropy(primal.probabilities), abs=EXACT_TOL)


@settings(max_examples=15)
@given(small_problems(), seeds())
def test_primal_solution_has_the_largest_entropy_among_feasible_distributions(
    problem: tuple[StateActionFeatures, np.ndarray], seed: int
) -> None:
    """Moving along any direction that keeps the constraints of (7) lowers the entropy."""
    features, theta0 = problem
    target = GibbsModel(features, theta0).expected_features
    p = solve_primal(features, target).probabilities
    F = features.counts(features.space.all_sequences())
    directions = null_space(np.vstack([np.ones(F.shape[0]), F.T]))  # A v = 0: moments and mass kept
    if directions.shape[1] == 0:
        return  # the constraints pin p down completely (e.g. 'history' features)
    rng = np.random.default_rng(seed)
    for v in (directions @ rng.normal(size=(directions.shape[1], 4))).T:
        step = 0.5 * p.min() / np.abs(v).max()  # stays inside the simplex
        q = p + step * v
        assert q.min() > 0
        np.testing.assert_allclose(F.T @ q, target, atol=EXACT_TOL)
        assert entropy(q) < entropy(p)


@given(spaces(max_items=4, max_horizon=3), seeds())
def test_unigram_constraints_give_iid_items(space: SequenceSpace, seed: int) -> None:
    """Item counts E f_v = T π_v as the only constraints: the max-entropy p is Π_t π_{s_t}."""
    pi = np.random.default_rng(seed).dirichlet(np.ones(space.n_items))
    primal = solve_primal(unigram_features(space), space.horizon * pi)
    assert primal.success
    iid = np.prod(pi[space.all_sequences()], axis=1)
    np.testing.assert_allclose(primal.probabilities, iid, atol=SOLVER_TOL)
    assert primal.entropy == pytest.approx(space.horizon * entropy(pi), abs=SOLVER_TOL)


# --- boundary case: the target lies on a face of the moment polytope ------------------------------
@given(spaces(max_items=3, max_horizon=3), st.data())
def test_history_features_pin_the_primal_to_the_empirical_distribution(
    space: SequenceSpace, data: st.DataObject
) -> None:
    """With 'history' features the leaves are the sequences: p must be the demo frequencies."""
    features = StateActionFeatures(space, "history")
    seqs = data.draw(demos(space, max_n=12))
    primal = solve_primal(features, demo_moments(features, seqs))
    empirical = np.bincount(space.encode(seqs), minlength=space.size) / seqs.shape[0]
    assert primal.success
    np.testing.assert_allclose(primal.probabilities, empirical, atol=EXACT_TOL)


@settings(max_examples=15)
@given(small_problems(states=("last", "time_last")), st.data())
def test_primal_on_a_face_is_a_gibbs_form_on_its_support(
    problem: tuple[StateActionFeatures, np.ndarray], data: st.DataObject
) -> None:
    """Sparse demos put unused features at 0. Then p vanishes on every sequence that uses one, is
    positive on every demo, and log p on its support is affine in f (the KKT conditions of (7))."""
    features, _ = problem
    seqs = data.draw(demos(features.space, max_n=6))
    target = demo_moments(features, seqs)
    primal = solve_primal(features, target)
    assert primal.success and primal.constraint_violation <= EXACT_TOL
    p = primal.probabilities
    F = features.counts(features.space.all_sequences())
    uses_unused = (F[:, target == 0] > 0).any(axis=1)
    assert np.all(p[uses_unused] == 0)
    assert np.all(p[features.space.encode(seqs)] > 0)
    support = p > 0
    design = np.hstack([np.ones((support.sum(), 1)), F[support]])
    coef, *_ = np.linalg.lstsq(design, np.log(p[support]), rcond=None)
    np.testing.assert_allclose(design @ coef, np.log(p[support]), atol=1e-8)
    # the dual fit approaches the same distribution as θ of the unused features grows
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnboundedOptimumWarning)
        fit = fit_maxent(features, seqs)
    warned = any(issubclass(w.category, UnboundedOptimumWarning) for w in caught)
    assert warned == bool(uses_unused.any())
    assert fit.converged
    assert fit.entropy <= primal.entropy + SOLVER_TOL
    np.testing.assert_allclose(GibbsModel(features, fit.theta).probabilities(), p, atol=SOLVER_TOL)


# --- bad input ------------------------------------------------------------------------------------
def test_primal_refuses_a_large_space() -> None:
    space = SequenceSpace(2, 11)
    assert space.size > MAX_PRIMAL_SEQUENCES
    features = StateActionFeatures(space, "last")
    with pytest.raises(
        ValueError, match=r"V\^T <= 1024 sequences, got V\^T=2048 \(V=2, T=11\); use fit_maxent"
    ):
        solve_primal(features, np.zeros(features.dim))


def test_primal_checks_the_target() -> None:
    features = StateActionFeatures(SequenceSpace(2, 2), "history")
    with pytest.raises(ValueError, match=r"target_moments must have shape \(6,\)"):
        solve_primal(features, np.zeros(4))
    with pytest.raises(ValueError, match=r"target_moments\[1\] = nan is not finite"):
        solve_primal(features, [0.5, np.nan, 0.25, 0.25, 0.25, 0.25])
    # depth-1 moments must sum to 1: no distribution attains this target
    with pytest.raises(ValueError, match="not the feature expectations of any distribution"):
        solve_primal(features, [0.7, 0.7, 0.35, 0.35, 0.35, 0.35])
