"""P_θ(S) = exp(−θ·f(S))/Z by enumeration (eq. 8): log Z, moments, entropy, KL (E4), sampling."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXACT_TOL, MC_Z_SCORE
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import logsumexp, softmax
from strategies import custom_feature_maps, distributions, problems, seeds, spaces, unigram_features

from maxent_il.checks import probability_vector
from maxent_il.features import CustomFeatures, FeatureMap, StateActionFeatures
from maxent_il.gibbs import (
    GibbsModel,
    all_log_probs,
    entropy,
    gibbs_stats,
    kl_divergence,
    log_gibbs,
    log_partition,
)
from maxent_il.space import EnumerationTooLargeError, SequenceSpace


def brute_force(features: FeatureMap, theta: np.ndarray) -> dict[str, np.ndarray | float]:
    """log Z, P, E_P f and H(P) from the full (V^T, d) count table in one shot (no streaming)."""
    F = features.counts(features.space.all_sequences())
    neg_cost = -(F @ theta)
    log_z = float(logsumexp(neg_cost))
    log_p = neg_cost - log_z
    p = np.exp(log_p)
    return {"log_z": log_z, "log_p": log_p, "p": p, "moments": p @ F, "entropy": float(-(p @ log_p))}


def close(actual: object, desired: object, *, scale: float = 1.0) -> None:
    np.testing.assert_allclose(actual, desired, rtol=EXACT_TOL, atol=EXACT_TOL * scale)


def assert_counts_match(counts: np.ndarray, probs: np.ndarray) -> None:
    """Per-cell z-scores of multinomial counts against exact probabilities, within MC_Z_SCORE.

    Cells with expected count below 5 are pooled into one cell, as for a chi-square test.
    """
    n = counts.sum()
    rare = n * probs < 5
    cells_c = np.append(counts[~rare], counts[rare].sum())
    cells_p = np.append(probs[~rare], probs[rare].sum())
    keep = cells_p > 0
    z = (cells_c[keep] - n * cells_p[keep]) / np.sqrt(n * cells_p[keep] * (1 - cells_p[keep]) + 1e-300)
    assert np.abs(z).max() <= MC_Z_SCORE, f"max |z| = {np.abs(z).max():.2f}"
    assert counts[probs == 0].sum() == 0


# --- enumeration against a second route -----------------------------------------------------------
@given(problems())
def test_gibbs_stats_equal_the_brute_force_sums(problem: tuple[StateActionFeatures, np.ndarray]) -> None:
    features, theta = problem
    ref = brute_force(features, theta)
    stats = gibbs_stats(features, theta)
    close(stats.log_partition, ref["log_z"])
    close(stats.expected_features, ref["moments"])
    close(stats.entropy, ref["entropy"])
    close(stats.expected_cost, theta @ ref["moments"])
    close(stats.entropy, stats.log_partition + stats.expected_cost)  # H = log Z + E_P c
    close(log_partition(features, theta), ref["log_z"])


@given(custom_feature_maps(), seeds())
def test_gibbs_stats_of_custom_maps_equal_the_brute_force_sums(features: CustomFeatures, seed: int) -> None:
    theta = np.random.default_rng(seed).normal(scale=2.0, size=features.dim)
    ref = brute_force(features, theta)
    stats = gibbs_stats(features, theta)
    close(stats.log_partition, ref["log_z"])
    close(stats.expected_features, ref["moments"])
    close(stats.entropy, ref["entropy"])


@given(problems(scale=500.0), st.integers(1, 40))
def test_streaming_pass_is_exact_for_any_chunking_and_cost_magnitude(
    problem: tuple[StateActionFeatures, np.ndarray], chunk_size: int
) -> None:
    """Chunks whose running maximum of −c grows force the rescaling; costs up to ±500 per step."""
    features, theta = problem
    scale = 500.0 * features.space.horizon
    ref = brute_force(features, theta)
    stats = gibbs_stats(features, theta, chunk_size=chunk_size)
    assert np.isfinite(stats.log_partition)
    close(stats.log_partition, ref["log_z"], scale=scale)
    close(stats.expected_features, ref["moments"], scale=scale)
    close(stats.entropy, ref["entropy"], scale=scale)


@given(problems())
def test_model_log_probs_are_normalized_and_consistent(
    problem: tuple[StateActionFeatures, np.ndarray],
) -> None:
    features, theta = problem
    model = GibbsModel(features, theta)
    seqs = features.space.all_sequences()
    log_p = model.all_log_probs()
    close(log_p, brute_force(features, theta)["log_p"])
    close(model.log_prob(seqs), log_p)
    close(all_log_probs(features, theta), log_p)
    close(model.probabilities().sum(), 1.0)
    close(model.costs(seqs), features.counts(seqs) @ theta)
    close(model.entropy, entropy(model.probabilities()))
    close(model.expected_features, model.probabilities() @ features.counts(seqs))


# --- closed forms ---------------------------------------------------------------------------------
@given(st.one_of(problems(), custom_feature_maps().map(lambda f: (f, None))))
def test_zero_cost_gives_the_uniform_distribution(problem: tuple[FeatureMap, object]) -> None:
    features = problem[0]
    V, T = features.space.n_items, features.space.horizon
    stats = gibbs_stats(features, np.zeros(features.dim))
    close(stats.log_partition, T * np.log(V))
    close(stats.entropy, T * np.log(V))
    close(stats.expected_features, features.counts(features.space.all_sequences()).mean(axis=0))


@given(spaces(), seeds())
def test_unigram_costs_have_a_product_form(space: SequenceSpace, seed: int) -> None:
    """c(S) = Σ_t a_{s_t}: log Z = T log Σ_v e^{−a_v}, E f_v = T softmax(−a)_v, H = T H(softmax(−a))."""
    a = np.random.default_rng(seed).normal(scale=2.0, size=space.n_items)
    features = unigram_features(space)
    stats = gibbs_stats(features, a)
    pi = softmax(-a)
    close(stats.log_partition, space.horizon * logsumexp(-a))
    close(stats.expected_features, space.horizon * pi)
    close(stats.entropy, space.horizon * entropy(pi))


# --- KL(q‖P) (eqs. 18, 20; claim E4) --------------------------------------------------------------
@given(problems(), st.data())
def test_kl_equals_expected_cost_minus_entropy_plus_log_z(
    problem: tuple[StateActionFeatures, np.ndarray], data: st.DataObject
) -> None:
    features, theta = problem
    q = data.draw(distributions(features.space.size))
    costs = features.counts(features.space.all_sequences()) @ theta
    ref = brute_force(features, theta)
    kl = kl_divergence(q, features, theta)
    close(kl, q @ costs - entropy(q) + ref["log_z"], scale=10.0)
    close(GibbsModel(features, theta).kl_from(q), kl)
    # KL ≥ 0, and Pinsker: KL ≥ 2·TV(q, P)², so KL > 0 whenever q ≠ P
    tv = 0.5 * np.abs(q - ref["p"]).sum()
    assert kl >= 2 * tv**2 - EXACT_TOL
    if tv > 1e-4:
        assert kl > 0


@given(problems())
def test_kl_is_zero_at_q_equal_p(problem: tuple[StateActionFeatures, np.ndarray]) -> None:
    features, theta = problem
    model = GibbsModel(features, theta)
    p = model.probabilities()
    assert abs(model.kl_from(p / p.sum())) <= EXACT_TOL


def test_kl_of_a_point_mass_is_its_surprisal() -> None:
    features = StateActionFeatures(SequenceSpace(3, 2), "last")
    theta = np.random.default_rng(0).normal(size=features.dim)
    model = GibbsModel(features, theta)
    q = np.zeros(9)
    q[5] = 1.0
    close(model.kl_from(q), -model.all_log_probs()[5])


@pytest.mark.parametrize(
    ("q", "pattern"),
    [
        (
            np.full(8, 1 / 8),
            r"q must be a probability vector of shape \(9,\) over all V\^T sequences, got \(8,\)",
        ),
        (np.r_[-0.1, np.full(8, 1.1 / 8)], "q must hold finite non-negative probabilities"),
        (np.r_[np.nan, np.full(8, 1 / 8)], "q must hold finite non-negative probabilities"),
        pytest.param(np.full(9, 0.1), r"q sums to 0\.9"),
    ],
)
def test_kl_rejects_a_q_that_is_not_a_distribution(q: np.ndarray, pattern: str) -> None:
    features = StateActionFeatures(SequenceSpace(3, 2), "last")
    with pytest.raises(ValueError, match=pattern):
        kl_divergence(q, features, np.zeros(features.dim))
    with pytest.raises(ValueError, match=pattern):
        probability_vector(q, "q", size=9)


@given(problems())
def test_log_gibbs_of_the_costs_is_the_brute_force_log_p_and_log_z(problem) -> None:
    features, theta = problem
    ref = brute_force(features, theta)
    log_p, log_z = log_gibbs(features.costs(theta, features.space.all_sequences()))
    close(log_z, ref["log_z"], scale=max(1.0, abs(ref["log_z"])))
    close(log_p, ref["log_p"], scale=max(1.0, float(np.abs(ref["log_p"]).max())))
    close(all_log_probs(features, theta), log_p, scale=max(1.0, float(np.abs(log_p).max())))


def test_entropy_of_known_distributions() -> None:
    close(entropy(np.full(8, 1 / 8)), np.log(8))
    close(entropy([1.0, 0.0, 0.0]), 0.0)  # 0 log 0 = 0
    close(entropy([0.5, 0.5, 0.0]), np.log(2))


# --- exact sampling -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "features",
    [
        StateActionFeatures(SequenceSpace(3, 3), "last"),
        StateActionFeatures(SequenceSpace(2, 4), "time_last"),
        StateActionFeatures(SequenceSpace(3, 3), "history"),
        unigram_features(SequenceSpace(4, 2)),
    ],
    ids=["last", "time_last", "history", "custom"],
)
def test_gibbs_model_samples_follow_p(features: FeatureMap, rng: np.random.Generator) -> None:
    theta = rng.normal(scale=1.0, size=features.dim)
    model = GibbsModel(features, theta)
    samples = model.sample(20_000, rng=rng)
    assert samples.shape == (20_000, features.space.horizon) and samples.dtype == np.int64
    counts = np.bincount(features.space.encode(samples), minlength=features.space.size)
    assert_counts_match(counts, model.probabilities())


def test_sample_sizes(rng: np.random.Generator) -> None:
    model = GibbsModel(StateActionFeatures(SequenceSpace(2, 3), "last"), np.zeros(6))
    assert model.sample(0, rng=rng).shape == (0, 3)
    with pytest.raises(ValueError, match=r"n must be a non-negative integer .*, got -1"):
        model.sample(-1, rng=rng)


# --- bad input ------------------------------------------------------------------------------------
def test_gibbs_refuses_a_space_too_large_to_enumerate() -> None:
    features = StateActionFeatures(SequenceSpace(10, 9), "last")
    with pytest.raises(EnumerationTooLargeError, match=r"V=10, T=9 .*GiB.*soft_bellman"):
        gibbs_stats(features, np.zeros(features.dim))
    with pytest.raises(EnumerationTooLargeError):
        GibbsModel(features, np.zeros(features.dim)).log_partition  # noqa: B018


def test_gibbs_model_checks_theta() -> None:
    features = StateActionFeatures(SequenceSpace(2, 2), "time_last")
    with pytest.raises(ValueError, match=r"theta must have shape \(6,\)"):
        GibbsModel(features, np.zeros(3))
    with pytest.raises(ValueError, match=r"theta\[1\] = inf is not finite"):
        gibbs_stats(features, [0, np.inf, 0, 0, 0, 0])
