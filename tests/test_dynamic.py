"""Soft Bellman backup vs enumeration for decomposable features (claim E12), closed forms, sampling."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXACT_TOL, MC_Z_SCORE
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import logsumexp, softmax
from strategies import problems, seeds, spaces, unigram_features

import maxent_il.dynamic as dynamic
from maxent_il.dynamic import SCALED_COST_RANGE, SoftBellmanResult, soft_bellman
from maxent_il.features import StateActionFeatures
from maxent_il.gibbs import GibbsModel, gibbs_stats
from maxent_il.space import SequenceSpace


def methods_for(features: StateActionFeatures, theta: np.ndarray) -> list[str]:
    """The DP methods that apply: 'log' and 'auto' always, 'scaled' for 'last' within its range."""
    out = ["log", "auto"]
    V = features.space.n_items
    if features.state == "last" and features.space.horizon > 1:
        if np.ptp(theta[: V * V]) <= SCALED_COST_RANGE:
            out.append("scaled")
    return out


def close(actual: object, desired: object, *, scale: float = 1.0) -> None:
    np.testing.assert_allclose(actual, desired, rtol=EXACT_TOL, atol=EXACT_TOL * scale)


def prefix_log_probs(log_p: np.ndarray, space: SequenceSpace, t: int) -> np.ndarray:
    """log P(s_1 … s_t) for all V^t prefixes (index order), from log P over the whole space."""
    return logsumexp(log_p.reshape(space.n_items**t, -1), axis=1)


def all_prefixes(space: SequenceSpace, length: int) -> np.ndarray:
    """All V^length histories in index order; one empty history when length = 0."""
    if length == 0:
        return np.zeros((1, 0), dtype=np.int64)
    return SequenceSpace(space.n_items, length).all_sequences()


def check_against_enumeration(features: StateActionFeatures, theta: np.ndarray, method: str) -> None:
    space = features.space
    V, T = space.n_items, space.horizon
    scale = max(1.0, float(np.abs(theta).max()) * T)
    dp = soft_bellman(features, theta, method=method)
    model = GibbsModel(features, theta)
    log_p = model.all_log_probs()
    seqs = space.all_sequences()

    # log Z = V(root), E_P f, entropy
    assert np.isfinite(dp.log_partition)
    close(dp.log_partition, model.log_partition, scale=scale)
    close(dp.values_along(seqs)[:, 0], model.log_partition, scale=scale)
    close(dp.expected_features, model.expected_features, scale=scale)
    close(dp.entropy, model.entropy, scale=scale)

    # P_θ(S) = Π_t π_t(s_t | h_t) for every sequence
    close(dp.log_prob(seqs), log_p, scale=scale)
    close(dp.log_conditionals(seqs).sum(axis=1), log_p, scale=scale)

    # item marginals P(s_t = a)
    p = np.exp(log_p)
    marginals = np.stack([np.bincount(seqs[:, t], weights=p, minlength=V) for t in range(T)])
    close(dp.item_marginals, marginals)
    close(dp.item_marginals.sum(axis=1), 1.0)

    # conditionals at every history: normalized, and equal to P(h_t a) / P(h_t) by enumeration
    prev = np.zeros(1)
    for t in range(1, T + 1):
        cond = dp.next_item_log_probs(all_prefixes(space, t - 1))  # (V^(t−1), V)
        assert cond.shape == (V ** (t - 1), V)
        close(logsumexp(cond, axis=1), 0.0, scale=scale)
        here = prefix_log_probs(log_p, space, t).reshape(V ** (t - 1), V)
        close(cond, here - prev[:, None], scale=scale)
        prev = here.reshape(-1)

    # soft values along each sequence: W_{t+1}(s_1 … s_t) = log P(s_1 … s_t) + log Z + Σ_{k≤t} θ[idx_k]
    values = dp.values_along(seqs)
    step_costs = np.cumsum(theta[features.step_indices(seqs)], axis=1)
    for t in range(1, T + 1):
        prefix_lp = prefix_log_probs(log_p, space, t)[space.encode(seqs) // V ** (T - t)]
        close(values[:, t], prefix_lp + model.log_partition + step_costs[:, t - 1], scale=scale)
    close(values[:, T], 0.0, scale=scale)  # W_{T+1} = 0


# --- E12: DP = enumeration ------------------------------------------------------------------------
@given(problems())
def test_dp_equals_enumeration_for_every_state_and_method(
    problem: tuple[StateActionFeatures, np.ndarray],
) -> None:
    features, theta = problem
    for method in methods_for(features, theta):
        check_against_enumeration(features, theta, method)


@given(problems(scale=500.0))
def test_dp_equals_enumeration_for_large_costs(problem: tuple[StateActionFeatures, np.ndarray]) -> None:
    """θ entries up to ±500 (probabilities down to e^{−1000·T}): log Z stays finite and exact."""
    features, theta = problem
    for method in methods_for(features, theta):
        check_against_enumeration(features, theta, method)


@given(problems(states=("last",)), st.sampled_from([-1e4, 0.0, 3e3]), st.sampled_from([1.0, 100.0, 299.0]))
def test_scaled_path_is_exact_for_large_offsets_within_its_range(
    problem: tuple[StateActionFeatures, np.ndarray], offset: float, spread: float
) -> None:
    features, theta = problem
    theta = offset + spread * theta / max(1e-12, np.ptp(theta))  # transition spread ≤ spread
    for method in methods_for(features, theta):
        check_against_enumeration(features, theta, method)


@given(problems(states=("last",), scale=500.0))
def test_auto_uses_the_scaled_path_exactly_when_it_applies(
    problem: tuple[StateActionFeatures, np.ndarray],
) -> None:
    features, theta = problem
    calls: list[str] = []
    original = dynamic._markov_scaled

    def spy(*args: object) -> SoftBellmanResult:
        calls.append("scaled")
        return original(*args)  # type: ignore[arg-type]

    mp = pytest.MonkeyPatch()
    mp.setattr(dynamic, "_markov_scaled", spy)
    try:
        auto = soft_bellman(features, theta, method="auto")
    finally:
        mp.undo()
    assert bool(calls) == ("scaled" in methods_for(features, theta))
    close(
        auto.log_partition, gibbs_stats(features, theta).log_partition, scale=500.0 * features.space.horizon
    )


def test_scaled_method_refuses_what_it_cannot_do() -> None:
    space = SequenceSpace(3, 3)
    last = StateActionFeatures(space, "last")
    theta = np.zeros(last.dim)
    theta[0] = SCALED_COST_RANGE + 1.0
    with pytest.raises(ValueError, match=r"method='scaled' needs 'last' features.*spread by at most 300"):
        soft_bellman(last, theta, method="scaled")
    with pytest.raises(ValueError, match="method='scaled' needs 'last' features"):
        soft_bellman(StateActionFeatures(space, "time_last"), np.zeros(3 + 2 * 9), method="scaled")
    with pytest.raises(ValueError, match="method='scaled' applies to 'last' features only"):
        soft_bellman(StateActionFeatures(space, "history"), np.zeros(39), method="scaled")


def test_dp_handles_a_space_far_beyond_enumeration() -> None:
    """V=50, T=40 (50^40 sequences): log Z by DP equals the closed form of an action-only cost."""
    space = SequenceSpace(50, 40)
    a = np.random.default_rng(3).normal(scale=4.0, size=50)
    for state in ("last", "time_last"):
        features = StateActionFeatures(space, state)
        theta = np.tile(a, features.dim // 50)  # θ[idx(state, a)] = a_a: index ≡ a (mod V)
        for method in methods_for(features, theta):
            dp = soft_bellman(features, theta, method=method)
            close(dp.log_partition, 40 * logsumexp(-a), scale=100.0)
            close(dp.item_marginals, np.broadcast_to(softmax(-a), (40, 50)))


# --- closed forms ---------------------------------------------------------------------------------
@given(spaces(), seeds())
def test_action_only_costs_give_a_product_distribution(space: SequenceSpace, seed: int) -> None:
    """θ that depends only on (t, action): log Z = Σ_t log Σ_v e^{−a_{t,v}}; marginals softmax(−a_t).

    For 'last' the cost may depend on the action only, for 'time_last' and 'history' on t too; a
    unigram CustomFeatures map gives the same log Z by enumeration.
    """
    V, T = space.n_items, space.horizon
    rng = np.random.default_rng(seed)
    a = rng.normal(scale=2.0, size=V)
    per_step = rng.normal(scale=2.0, size=(T, V))
    for state in ("last", "time_last", "history"):
        features = StateActionFeatures(space, state)
        costs = np.broadcast_to(a, (T, V)) if state == "last" else per_step
        seqs = space.all_sequences()
        # θ from the requirement θ[idx_t(S)] = costs[t, s_t] along every sequence
        theta = np.zeros(features.dim)
        idx = features.step_indices(seqs)
        for t in range(T):
            theta[idx[:, t]] = costs[t, seqs[:, t]]
        for method in methods_for(features, theta):
            dp = soft_bellman(features, theta, method=method)
            close(dp.log_partition, logsumexp(-costs, axis=1).sum(), scale=10.0)
            close(dp.item_marginals, softmax(-costs, axis=1))
    unigram = gibbs_stats(unigram_features(space), a)
    close(unigram.log_partition, T * logsumexp(-a), scale=10.0)


@given(problems())
def test_zero_cost_gives_log_z_and_entropy_t_log_v(problem: tuple[StateActionFeatures, np.ndarray]) -> None:
    features, _ = problem
    V, T = features.space.n_items, features.space.horizon
    for method in methods_for(features, np.zeros(features.dim)):
        dp = soft_bellman(features, np.zeros(features.dim), method=method)
        close(dp.log_partition, T * np.log(V))
        close(dp.entropy, T * np.log(V))
        close(dp.item_marginals, np.full((T, V), 1 / V))


@given(problems())
def test_expected_features_sum_to_one_per_step(problem: tuple[StateActionFeatures, np.ndarray]) -> None:
    """One feature fires per step, so each step's block of E_P f is a distribution."""
    features, theta = problem
    V, T = features.space.n_items, features.space.horizon
    ef = soft_bellman(features, theta).expected_features
    assert ef.min() >= 0
    if features.state == "history":
        offsets = features.history_offsets()
        blocks = [ef[offsets[t] : offsets[t] + V ** (t + 1)] for t in range(T)]
        close([b.sum() for b in blocks], np.ones(T))
        for t in range(1, T):  # a node's probability is the sum of its children's
            close(blocks[t].reshape(-1, V).sum(axis=1), blocks[t - 1])
    elif features.state == "time_last":
        close(ef[:V].sum(), 1.0)
        close(ef[V:].reshape(T - 1, V * V).sum(axis=1), np.ones(T - 1))
    else:
        close(ef[V * V :].sum(), 1.0)
        close(ef[: V * V].sum(), T - 1.0)


# --- exact ancestral sampling ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("state", "method"),
    [("last", "log"), ("last", "scaled"), ("time_last", "log"), ("history", "log")],
)
def test_ancestral_samples_follow_p(state: str, method: str, rng: np.random.Generator) -> None:
    features = StateActionFeatures(SequenceSpace(3, 3), state)
    theta = rng.normal(size=features.dim)
    dp = soft_bellman(features, theta, method=method)
    n = 20_000
    samples = dp.sample(n, rng=rng)
    assert samples.shape == (n, 3) and samples.dtype == np.int64
    counts = np.bincount(features.space.encode(samples), minlength=features.space.size)
    p = GibbsModel(features, theta).probabilities()
    z = (counts - n * p) / np.sqrt(n * p * (1 - p))
    assert np.abs(z).max() <= MC_Z_SCORE, np.abs(z).max()


def test_sample_of_zero_sequences(rng: np.random.Generator) -> None:
    dp = soft_bellman(StateActionFeatures(SequenceSpace(2, 3), "history"), np.zeros(14))
    assert dp.sample(0, rng=rng).shape == (0, 3)
    with pytest.raises(ValueError, match=r"n must be a non-negative integer .*, got -2"):
        dp.sample(-2, rng=rng)


# --- bad input ------------------------------------------------------------------------------------
def test_soft_bellman_refuses_custom_features() -> None:
    features = unigram_features(SequenceSpace(2, 2))
    with pytest.raises(ValueError, match=r"needs decomposable state-action features.*got CustomFeatures"):
        soft_bellman(features, np.zeros(2))


def test_soft_bellman_checks_method_and_theta() -> None:
    features = StateActionFeatures(SequenceSpace(2, 2), "last")
    with pytest.raises(ValueError, match=r"unknown method 'fast'; choose one of 'auto', 'log', 'scaled'"):
        soft_bellman(features, np.zeros(6), method="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"theta must have shape \(6,\)"):
        soft_bellman(features, np.zeros(7))
    with pytest.raises(ValueError, match=r"theta\[0\] = nan is not finite"):
        soft_bellman(features, np.r_[np.nan, np.zeros(5)])


@pytest.mark.parametrize(
    ("prefixes", "pattern"),
    [
        (
            np.zeros((2, 3), dtype=np.int64),
            r"prefixes must have shape \(N, t−1\) with t−1 < T=3, got \(2, 3\)",
        ),
        (np.zeros(2, dtype=np.int64), r"prefixes must have shape"),
        ([[0, 2]], r"prefix items must lie in 0\.\.1"),
        ([[0, -1]], r"prefix items must lie in 0\.\.1"),
        ([[0.5]], r"prefixes must hold integer item ids, got dtype float64"),
        ([[True]], r"prefixes must hold integer item ids, got dtype bool"),
    ],
)
def test_next_item_log_probs_checks_its_prefixes(prefixes: object, pattern: str) -> None:
    dp = soft_bellman(StateActionFeatures(SequenceSpace(2, 3), "time_last"), np.zeros(10))
    with pytest.raises(ValueError, match=pattern):
        dp.next_item_log_probs(prefixes)


def test_values_along_and_log_prob_validate_sequences() -> None:
    dp = soft_bellman(StateActionFeatures(SequenceSpace(2, 3), "last"), np.zeros(6))
    with pytest.raises(ValueError, match=r"sequences\[0, 0\] = 2 is outside the item range"):
        dp.log_prob([[2, 0, 0]])
    with pytest.raises(ValueError, match="horizon is T=3"):
        dp.values_along([[0, 0]])
