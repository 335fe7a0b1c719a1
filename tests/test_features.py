"""Feature maps f(S): state-action occurrence (paper §2.4) with three choices of state, custom maps."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import EXACT_TOL
from hypothesis import given
from hypothesis import strategies as st
from strategies import custom_feature_maps, feature_maps, seeds, unigram_features

from maxent_il.checks import finite_vector
from maxent_il.features import (
    MAX_HISTORY_DIM,
    STATE_KINDS,
    CustomFeatures,
    StateActionFeatures,
    state_action_features,
)
from maxent_il.space import SequenceSpace


def pair_name(features: StateActionFeatures, seq: np.ndarray, t: int) -> str:
    """The name of the (state, action) pair at step t (1-based), built from its definition."""
    prev = "start" if t == 1 else str(seq[t - 2])
    if features.state == "last":
        return f"{prev}->{seq[t - 1]}"
    if features.state == "time_last":
        return f"t={t}:{prev}->{seq[t - 1]}"
    return f"({','.join(map(str, seq[: t - 1]))})->{seq[t - 1]}"


# --- dimensions -----------------------------------------------------------------------------------
@given(feature_maps())
def test_dimension_of_each_state_kind(features: StateActionFeatures) -> None:
    V, T = features.space.n_items, features.space.horizon
    expected = {
        "history": sum(V**t for t in range(1, T + 1)),
        "last": (V + 1) * V,
        "time_last": V + (T - 1) * V * V,
    }[features.state]
    assert features.dim == expected
    # every feature occurs in some sequence, except 'last' transitions when T = 1
    fired = features.counts(features.space.all_sequences()).max(axis=0) > 0
    if features.state == "last" and T == 1:
        assert fired.sum() == V and fired[V * V :].all()
    else:
        assert fired.all()


@given(feature_maps(states=("history",)))
def test_history_features_are_the_nodes_of_the_prefix_tree(features: StateActionFeatures) -> None:
    seqs = features.space.all_sequences()
    prefixes = {tuple(row[:t]) for row in seqs for t in range(1, features.space.horizon + 1)}
    assert features.dim == len(prefixes)


# --- counts, costs, weighted counts ---------------------------------------------------------------
@given(feature_maps())
def test_counts_match_the_pair_names_along_each_sequence(features: StateActionFeatures) -> None:
    """f_i(S) = number of steps whose (state, action) pair is named names()[i]: a second route."""
    seqs = features.space.all_sequences()
    lookup = {name: i for i, name in enumerate(features.names())}
    reference = np.zeros((seqs.shape[0], features.dim))
    for n, seq in enumerate(seqs):
        for t in range(1, features.space.horizon + 1):
            reference[n, lookup[pair_name(features, seq, t)]] += 1
    np.testing.assert_array_equal(features.counts(seqs), reference)


@given(feature_maps())
def test_decomposable_counts_fire_one_feature_per_step(features: StateActionFeatures) -> None:
    seqs = features.space.all_sequences()
    counts = features.counts(seqs)
    assert features.is_decomposable
    np.testing.assert_array_equal(counts.sum(axis=1), features.space.horizon)
    idx = features.step_indices(seqs)
    assert idx.shape == seqs.shape and idx.min() >= 0 and idx.max() < features.dim
    one_hot = np.zeros_like(counts)
    for t in range(features.space.horizon):
        one_hot[np.arange(seqs.shape[0]), idx[:, t]] += 1
    np.testing.assert_array_equal(counts, one_hot)


@given(feature_maps(states=("last", "time_last")))
def test_first_step_and_transition_indices_agree_with_step_indices(features: StateActionFeatures) -> None:
    seqs = features.space.all_sequences()
    idx = features.step_indices(seqs)
    np.testing.assert_array_equal(idx[:, 0], features.first_step_index()[seqs[:, 0]])
    for t in range(2, features.space.horizon + 1):
        table = features.transition_index(t)
        assert table.shape == (features.space.n_items,) * 2
        np.testing.assert_array_equal(idx[:, t - 1], table[seqs[:, t - 2], seqs[:, t - 1]])


@given(feature_maps(states=("history",)))
def test_history_offsets_start_each_depth_block(features: StateActionFeatures) -> None:
    V, T = features.space.n_items, features.space.horizon
    offsets = features.history_offsets()
    np.testing.assert_array_equal(offsets, [sum(V**k for k in range(1, t)) for t in range(1, T + 1)])
    idx = features.step_indices(features.space.all_sequences())
    for t in range(T):
        assert offsets[t] <= idx[:, t].min() and idx[:, t].max() < offsets[t] + V ** (t + 1)


@given(st.one_of(feature_maps(), custom_feature_maps()), seeds())
def test_costs_are_counts_times_theta_and_weighted_counts_are_weights_times_counts(
    features: StateActionFeatures | CustomFeatures, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    seqs = features.space.all_sequences()
    theta = rng.normal(size=features.dim)
    weights = rng.random(seqs.shape[0])
    counts = features.counts(seqs)
    assert counts.shape == (seqs.shape[0], features.dim) and counts.dtype == np.float64
    np.testing.assert_allclose(features.costs(theta, seqs), counts @ theta, rtol=EXACT_TOL, atol=EXACT_TOL)
    np.testing.assert_allclose(
        features.weighted_counts(seqs, weights), weights @ counts, rtol=EXACT_TOL, atol=EXACT_TOL
    )


def test_unigram_custom_map_counts_items() -> None:
    space = SequenceSpace(3, 4)
    features = unigram_features(space)
    np.testing.assert_array_equal(features.counts([[0, 2, 2, 1], [1, 1, 1, 1]]), [[1, 1, 2], [0, 4, 0]])
    assert not features.is_decomposable
    assert features.names() == ["count[0]", "count[1]", "count[2]"]


# --- names ----------------------------------------------------------------------------------------
NAME_PATTERNS = {
    "last": r"(start|\d+)->\d+",
    "time_last": r"t=1:start->\d+|t=\d+:\d+->\d+",
    "history": r"\((\d+(,\d+)*)?\)->\d+",
}


@given(feature_maps())
def test_names_are_unique_and_readable(features: StateActionFeatures) -> None:
    names = features.names()
    assert len(names) == features.dim == len(set(names))
    for name in names:
        assert re.fullmatch(NAME_PATTERNS[features.state], name), name


def test_names_of_known_pairs() -> None:
    space = SequenceSpace(3, 3)
    assert StateActionFeatures(space, "last").name(9) == "start->0"
    assert StateActionFeatures(space, "last").name(5) == "1->2"
    assert StateActionFeatures(space, "time_last").name(2) == "t=1:start->2"
    assert StateActionFeatures(space, "time_last").name(3 + 9 + 7) == "t=3:2->1"
    assert StateActionFeatures(space, "history").name(1) == "()->1"
    assert StateActionFeatures(space, "history").name(3 + 9 + 5) == "(0,1)->2"
    custom = CustomFeatures(space, lambda s: np.zeros((s.shape[0], 2)), 2)
    assert custom.names() == ["f0", "f1"]


@pytest.mark.parametrize("state", STATE_KINDS)
def test_name_rejects_an_index_outside_the_features(state: str) -> None:
    features = StateActionFeatures(SequenceSpace(2, 2), state)
    with pytest.raises(ValueError, match=rf"feature index {features.dim} is outside 0\.\.{features.dim - 1}"):
        features.name(features.dim)
    with pytest.raises(ValueError, match="feature index -1"):
        features.name(-1)


# --- construction and bad input -------------------------------------------------------------------
def test_state_action_features_helper_builds_the_same_map() -> None:
    space = SequenceSpace(3, 2)
    for state in STATE_KINDS:
        a, b = state_action_features(space, state=state), StateActionFeatures(space, state)
        assert (a.state, a.dim) == (b.state, b.dim)
    assert state_action_features(space).state == "history"


def test_unknown_state_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"unknown feature state 'prefix'; choose one of"):
        StateActionFeatures(SequenceSpace(2, 2), "prefix")  # type: ignore[arg-type]


def test_history_features_refuse_a_huge_dimension() -> None:
    with pytest.raises(ValueError, match=r"'history' features for V=20, T=7 would have d=.*use state='last'"):
        StateActionFeatures(SequenceSpace(20, 7), "history")
    assert StateActionFeatures(SequenceSpace(20, 7), "last").dim == 21 * 20
    assert MAX_HISTORY_DIM < sum(20**t for t in range(1, 8))


def test_transition_index_errors() -> None:
    with pytest.raises(ValueError, match="'history' features have no"):
        StateActionFeatures(SequenceSpace(2, 3), "history").transition_index(2)
    with pytest.raises(ValueError, match=r"step t=1 has no transition; t must lie in 2\.\.T=3"):
        StateActionFeatures(SequenceSpace(2, 3), "last").transition_index(1)
    with pytest.raises(ValueError, match=r"step t=4"):
        StateActionFeatures(SequenceSpace(2, 3), "time_last").transition_index(4)


def test_counts_validate_sequences() -> None:
    features = StateActionFeatures(SequenceSpace(2, 3), "last")
    with pytest.raises(ValueError, match=r"sequences\[0, 2\] = 2 is outside the item range 0\.\.1"):
        features.counts([[0, 1, 2]])
    with pytest.raises(ValueError, match="horizon is T=3"):
        features.costs(np.zeros(features.dim), [[0, 1]])


@pytest.mark.parametrize(
    ("theta", "pattern"),
    [
        (np.zeros(5), r"theta must have shape \(6,\) \(one cost per feature\), got \(5,\)"),
        (np.zeros((6, 1)), r"theta must have shape \(6,\).*got \(6, 1\)"),
        ([0, 0, np.nan, 0, 0, 0], r"theta\[2\] = nan is not finite"),
        ([0, 0, 0, 0, 0, -np.inf], r"theta\[5\] = -inf is not finite"),
    ],
)
def test_check_theta_names_the_bad_value(theta: object, pattern: str) -> None:
    features = StateActionFeatures(SequenceSpace(2, 2), "last")
    with pytest.raises(ValueError, match=pattern):
        features.check_theta(theta)
    with pytest.raises(ValueError, match=pattern):
        features.costs(theta, [[0, 1]])  # type: ignore[arg-type]


def test_check_theta_returns_a_float_vector_and_uses_the_given_name() -> None:
    out = finite_vector([1, 2], "theta", dim=2)
    assert out.dtype == np.float64 and out.shape == (2,)
    with pytest.raises(ValueError, match=r"target_moments must have shape \(3,\)"):
        finite_vector([1, 2], "target_moments", dim=3)


def test_custom_feature_map_output_is_checked() -> None:
    space = SequenceSpace(2, 2)
    wrong_shape = CustomFeatures(space, lambda s: np.zeros((s.shape[0], 3)), 2)
    with pytest.raises(
        ValueError, match=r"custom feature map returned shape \(4, 3\); expected \(N, d\) = \(4, 2\)"
    ):
        wrong_shape.counts(space.all_sequences())
    non_finite = CustomFeatures(space, lambda s: np.full((s.shape[0], 2), np.inf), 2)
    with pytest.raises(ValueError, match="custom feature map returned non-finite values"):
        non_finite.costs(np.zeros(2), space.all_sequences())
    with pytest.raises(ValueError, match="custom feature map returned"):
        non_finite.weighted_counts(space.all_sequences(), np.ones(4))


def test_custom_feature_map_construction_is_checked() -> None:
    space = SequenceSpace(2, 2)
    with pytest.raises(ValueError, match="fn must be callable, got 3"):
        CustomFeatures(space, 3, 2)  # type: ignore[arg-type]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="dim must be a positive integer"):
            CustomFeatures(space, lambda s: s, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="feature_names has 1 entries but dim=2"):
        CustomFeatures(space, lambda s: s, 2, ("a",))
    with pytest.raises(ValueError, match=r"feature index 2 is outside 0\.\.1"):
        CustomFeatures(space, lambda s: s, 2).name(2)
