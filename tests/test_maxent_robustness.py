"""Hostile input to maxent_il: huge spaces, overflowing costs, bad probability vectors, nearly
deterministic Gibbs distributions, unattainable or boundary targets for the dual fit."""

from __future__ import annotations

import contextlib
import math
import re
import warnings
from collections.abc import Iterator

import numpy as np
import pytest

from maxent_il.divergences import entropy
from maxent_il.dynamic import row_entropies, soft_bellman
from maxent_il.features import CustomFeatures, StateActionFeatures
from maxent_il.gibbs import GibbsModel, gibbs_stats, log_gibbs, log_partition
from maxent_il.likelihood import demo_moments
from maxent_il.primal import moment_support, solve_primal
from maxent_il.solver import UnboundedOptimumWarning, fit_maxent
from maxent_il.space import EnumerationTooLargeError, SequenceSpace, format_count
from maxent_il.targets import diagnose_target


@contextlib.contextmanager
def no_warnings() -> Iterator[None]:
    """A context in which any warning (RuntimeWarning from overflow included) is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# --- the enumeration size guard -------------------------------------------------------------------
@pytest.mark.parametrize(("v", "t"), [(10, 400), (2, 5000), (1000, 200), (7, 10)])
def test_size_guard_names_v_t_size_and_memory_for_any_size(v: int, t: int) -> None:
    space = SequenceSpace(v, t)
    for call in (space.check_enumerable, space.all_sequences, lambda: list(space.iter_chunks())):
        with pytest.raises(EnumerationTooLargeError) as info:
            call()
        message = str(info.value)
        assert f"V={v}, T={t}" in message and "soft_bellman" in message
        shown = re.search(r"V\^T=([0-9.]+)e\+(\d+)", message)
        assert shown is not None
        # the printed V^T is V^T to 4 significant digits: compare in log10, exactly computed
        log10_size = t * math.log10(v)
        shown_log10 = float(shown.group(2)) + math.log10(float(shown.group(1)))
        assert shown_log10 == pytest.approx(log10_size, abs=1e-3)
        gib = re.search(r"about ([0-9.]+)(?:e\+(\d+))? GiB", message)
        assert gib is not None
        log10_gib = math.log10(float(gib.group(1))) + float(gib.group(2) or 0)
        expected = log10_size + math.log10(8 * (1 + t)) - 30 * math.log10(2)
        assert log10_gib == pytest.approx(expected, abs=2e-3)


def test_format_count_agrees_with_float_formatting_and_goes_beyond_it() -> None:
    rng = np.random.default_rng(0)
    for n in [0, 1, 8, 9999, 99995, 10**10, *rng.integers(1, 2**62, size=50).tolist()]:
        assert format_count(int(n)) == f"{int(n):.3e}"
    assert format_count(10**400) == "1.000e+400"
    assert format_count(2 * 10**400 - 1) == "2.000e+400"  # rounds like %e
    assert format_count(3**1000) == f"{3**1000 / 10**477:.3f}e+477"


def test_encode_of_a_space_beyond_int64_is_the_size_error() -> None:
    space = SequenceSpace(10, 30)  # 10^30 > 2^63
    with pytest.raises(EnumerationTooLargeError, match=r"V\^T=1\.000e\+30 does not fit an int64"):
        space.encode([[1] * 30])


# --- costs that overflow float64 -----------------------------------------------------------------
@pytest.mark.parametrize("state", ["last", "time_last", "history"])
def test_state_action_costs_beyond_the_safe_range_are_refused_naming_theta(state: str) -> None:
    features = StateActionFeatures(SequenceSpace(2, 3), state)
    theta = np.zeros(features.dim)
    theta[1] = 1e308  # T·|θ| = 3e308 overflows float64
    pattern = rf"theta\[1\] = 1e\+308 \(feature '{re.escape(features.name(1))}'\).*rescale θ"
    with no_warnings():
        for call in (
            lambda: gibbs_stats(features, theta),
            lambda: soft_bellman(features, theta),
            lambda: log_partition(features, theta),
            lambda: GibbsModel(features, theta).all_log_probs(),
            lambda: fit_maxent(features, [[0, 1, 0]], theta0=theta),
        ):
            with pytest.raises(ValueError, match=pattern):
                call()


def test_costs_just_inside_the_safe_range_give_log_z_minus_the_smallest_cost() -> None:
    """With |c| up to ~1e300, P_θ is a point mass on the cheapest sequence: log Z = −min c exactly, H = 0."""
    features = StateActionFeatures(SequenceSpace(2, 3), "last")
    theta = np.linspace(-1, 1, features.dim) * 3e299  # T·max|θ| = 9e299 ≤ 1e300
    costs = features.costs(theta, features.space.all_sequences())
    with no_warnings():
        stats = gibbs_stats(features, theta)
        dp = soft_bellman(features, theta)
    assert stats.log_partition == -costs.min() == pytest.approx(dp.log_partition, rel=1e-15)
    assert stats.entropy == 0.0 and dp.entropy == 0.0


def test_custom_costs_that_overflow_name_the_sequence_and_theta() -> None:
    space = SequenceSpace(2, 2)
    features = CustomFeatures(space, lambda s: 1e200 * (1.0 + s.astype(float)), 2, ("big0", "big1"))
    theta = np.array([1e200, 0.0])  # c(S) = 1e400 = inf in float64
    with no_warnings():
        for call in (lambda: gibbs_stats(features, theta), lambda: features.costs(theta, [[0, 1]])):
            pattern = r"sequence \[0, [01]\] is inf.*theta\[0\] = 1e\+200 \(feature 'big0'\)"
            with pytest.raises(ValueError, match=pattern):
                call()


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan, 2e300])
def test_log_gibbs_refuses_costs_it_cannot_exponentiate(bad: float) -> None:
    with no_warnings(), pytest.raises(ValueError, match=r"costs\[1\] = .* float64-safe limit"):
        log_gibbs([0.0, bad, 1.0])


# --- entropy() validates its input ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("p", "pattern"),
    [
        ([2, 2], r"p sums to 4\.0, not 1 \(tolerance 1e-09\)"),
        ([0.5, 0.5 + 2e-9], r"p sums to 1\.000000002"),
        ([1.5, -0.5], r"p\[1\] = -0\.5"),
        ([np.nan, 1.0], r"p\[0\] = nan"),
        ([[0.5, 0.5]], r"1-d probability vector .* shape \(1, 2\)"),
        ([], r"non-empty"),
        (np.log([0.5, 0.5]), r"p\[0\] = -0\.69"),  # log-probabilities are not probabilities
    ],
)
def test_entropy_refuses_what_is_not_a_probability_vector(p: object, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        entropy(p)


def test_entropy_accepts_rounding_within_the_tolerance_and_matches_closed_forms() -> None:
    assert entropy([0.5, 0.5 + 5e-10]) == pytest.approx(math.log(2), abs=1e-9)
    q = 0.3
    assert entropy([q, 1 - q, 0.0]) == pytest.approx(-q * math.log(q) - (1 - q) * math.log(1 - q), rel=1e-15)


# --- entropy stays accurate at large θ -----------------------------------------------------------
def two_level_entropy(n: int, gap: float) -> float:
    """H of n outcomes, one of cost 0 and n−1 of cost gap: x = (n−1)e^{−gap}, H = log1p(x) + x·gap/(1+x)."""
    x = (n - 1) * math.exp(-gap)
    return math.log1p(x) + x * gap / (1 + x)


@pytest.mark.parametrize("scale", [1.0, 1e2, 1e3])
def test_gibbs_entropy_of_a_two_level_cost_matches_the_closed_form(scale: float) -> None:
    """f(S) = 1 unless S is all zeros; θ = 0.3·scale. At scale 1e3 log Z + θ·E f cancels to 0."""
    space = SequenceSpace(3, 4)
    features = CustomFeatures(space, lambda s: (s.sum(axis=1, keepdims=True) > 0).astype(float), 1)
    gap = 0.3 * scale
    reference = two_level_entropy(space.size, gap)
    for chunk_size in (7, 81):
        stats = gibbs_stats(features, [gap], chunk_size=chunk_size)
        assert stats.entropy == pytest.approx(reference, rel=1e-12)
        assert stats.log_partition == pytest.approx(math.log1p((space.size - 1) * math.exp(-gap)), rel=1e-12)


@pytest.mark.parametrize("state", ["last", "time_last", "history"])
def test_entropy_of_scaled_random_costs_matches_a_high_precision_sum(state: str) -> None:
    mpmath = pytest.importorskip("mpmath")
    space = SequenceSpace(3, 3)
    features = StateActionFeatures(space, state)
    base = np.random.default_rng(4).normal(size=features.dim)
    for scale in (1.0, 1e2, 1e3):
        theta = base * scale
        costs = features.costs(theta, space.all_sequences())
        with mpmath.workdps(1000):  # enough digits for 1 + e^{−2000}
            c = [mpmath.mpf(float(x)) for x in costs]
            z = mpmath.fsum(mpmath.exp(-x) for x in c)
            h = float(mpmath.fsum(mpmath.exp(-x) / z * (x + mpmath.log(z)) for x in c))
        if h == 0.0:  # below float64's range: then both routes must give 0 too
            assert gibbs_stats(features, theta).entropy == 0.0 == soft_bellman(features, theta).entropy
            continue
        assert gibbs_stats(features, theta, chunk_size=5).entropy == pytest.approx(h, rel=1e-9)
        assert soft_bellman(features, theta).entropy == pytest.approx(h, rel=1e-9)
        assert fit_entropy_equals(features, theta)


def fit_entropy_equals(features: StateActionFeatures, theta: np.ndarray) -> bool:
    """The fit's entropy is the stable one too (one max_iter from θ0 = θ on a full-support target)."""
    target = soft_bellman(features, theta).expected_features
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnboundedOptimumWarning)
        fit = fit_maxent(features, target_moments=target, theta0=theta, max_iter=1, optimizer="lbfgs")
    return fit.entropy == soft_bellman(features, fit.theta).entropy


def test_row_entropies_keep_relative_accuracy_for_a_dominant_entry() -> None:
    for gap in (1.0, 50.0, 700.0):
        logits = np.array([[0.0, -gap, -gap, -gap]])
        assert row_entropies(logits)[0] == pytest.approx(two_level_entropy(4, gap), rel=1e-13)


# --- fit_maxent: unattainable targets, gtol, the warning's cause ------------------------------------
def test_unattainable_target_is_refused_not_reported_converged() -> None:
    """'last', V = 2, T = 2: start at 0 then a 1→1 transition is no sequence; every necessary check
    (counts ≥ 0, Σ = T, each count within [0, T]) passes, only the support LP sees it."""
    features = StateActionFeatures(SequenceSpace(2, 2), "last")
    target = np.zeros(features.dim)
    target[features.first_step_index()[0]] = 1.0
    target[features.transition_index(2)[1, 1]] = 1.0
    pattern = r"outside the marginal polytope"
    with pytest.raises(ValueError, match=pattern):
        fit_maxent(features, target_moments=target)
    with pytest.raises(ValueError, match=pattern):  # one definition: the primal says the same
        solve_primal(features, target)
    with pytest.raises(ValueError, match=pattern):
        moment_support(features, target)
    nudged = demo_moments(features, [[0, 0], [1, 1]])
    nudged[features.transition_index(2)[0, 1]] -= 1e-6  # a count 1e-6 below 0 …
    nudged[features.transition_index(2)[0, 0]] += 1e-6  # … with the sum kept at T
    with pytest.raises(ValueError, match=r"target_moments\[1\] = -1e-06 .* is negative"):
        fit_maxent(features, target_moments=nudged)


def test_unattainable_targets_on_spaces_beyond_the_lp_fail_the_necessary_checks() -> None:
    features = StateActionFeatures(SequenceSpace(3, 12), "last")  # 3^12 sequences: no LP
    target = demo_moments(features, [[0, 1, 2] * 4])
    with pytest.raises(ValueError, match=r"sum to 13\.0, .* T=12"):
        fit_maxent(features, target_moments=target + np.eye(features.dim)[0])
    custom = CustomFeatures(SequenceSpace(2, 14), lambda s: s[:, :1].astype(float), 1, ("first",))
    with pytest.raises(ValueError, match=r"target_moments\[0\] = 1\.5 \(feature 'first'\) .* \[0\.0, 1\.0\]"):
        fit_maxent(custom, target_moments=[1.5])


@pytest.mark.parametrize("gtol", [0.0, -1e-8, float("nan"), float("inf")])
def test_fit_rejects_a_gtol_that_can_never_be_met(gtol: float) -> None:
    features = StateActionFeatures(SequenceSpace(2, 2), "last")
    with pytest.raises(ValueError, match=r"gtol must be a finite number > 0"):
        fit_maxent(features, [[0, 1]], gtol=gtol)


def fit_warning(*args: object, **kwargs: object) -> tuple[object, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnboundedOptimumWarning)
        fit = fit_maxent(*args, **kwargs)  # type: ignore[arg-type]
    return fit, [str(w.message) for w in caught if issubclass(w.category, UnboundedOptimumWarning)]


def test_warning_names_a_face_when_no_feature_is_at_its_extreme() -> None:
    """f(S) = (s1 + s2, s1 − s2) on V = T = 2: the hull is a diamond, and demos {00, 01} lie on its
    edge (t, −t) with both features strictly inside their ranges. The optimum is at infinity; the
    fitted P_θ piles its mass on the edge's two sequences, as the primal (7) does."""
    space = SequenceSpace(2, 2)
    features = CustomFeatures(space, lambda s: np.stack([s[:, 0] + s[:, 1], s[:, 0] - s[:, 1]], 1), 2)
    demos = [[0, 0], [0, 1]]
    fit, messages = fit_warning(features, demos, max_iter=200)
    assert len(messages) == 1
    assert "face of the marginal polytope" in messages[0] and "2 of 4 sequences" in messages[0]
    assert "never" not in messages[0]
    assert fit.boundary == "face" and fit.unused_features == ()
    p = GibbsModel(features, fit.theta).probabilities()
    primal = solve_primal(features, demo_moments(features, demos))
    assert np.flatnonzero(primal.probabilities > 0).tolist() == [0, 1]
    assert p[[0, 1]].sum() > 0.999
    # with l2 > 0 the optimum is finite: no warning
    fit_l2, messages = fit_warning(features, demos, l2=0.1)
    assert messages == [] and fit_l2.converged


def test_warning_by_cause_for_demos_and_for_given_targets() -> None:
    features = StateActionFeatures(SequenceSpace(2, 2), "last")
    demos = [[0, 0], [1, 1]]
    _, from_demos = fit_warning(features, demos, max_iter=20)
    assert len(from_demos) == 1 and "are never used by the demonstrations" in from_demos[0]
    _, from_target = fit_warning(features, target_moments=demo_moments(features, demos), max_iter=20)
    assert len(from_target) == 1 and "target_moments put" in from_target[0]
    assert "never used" not in from_target[0]
    fit, interior = fit_warning(features, [[0, 0], [0, 1], [1, 0], [1, 1]])
    assert interior == [] and fit.boundary == "" and fit.converged


def test_diagnosis_support_is_the_primal_support() -> None:
    rng = np.random.default_rng(3)
    for state in ("last", "time_last", "history"):
        features = StateActionFeatures(SequenceSpace(2, 3), state)
        demos = rng.integers(0, 2, size=(3, 3))
        target = demo_moments(features, demos)
        diagnosis = diagnose_target(features, target, from_demos=True)
        primal = solve_primal(features, target)
        assert diagnosis.support_size == int((primal.probabilities > 0).sum())
        assert (diagnosis.boundary == "") == (diagnosis.support_size == features.space.size)
