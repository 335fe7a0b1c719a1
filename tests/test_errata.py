"""Places where the paper's statements need a condition, shown on exact problems (docs/errata.md)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from maxent_il.features import StateActionFeatures
from maxent_il.gibbs import GibbsModel
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
