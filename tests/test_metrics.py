"""Tests of the metrics: exact divergences (maxent_il.divergences), oracle metrics, ranking."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from conftest import EXACT_TOL, MC_Z_SCORE
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import entropy as scipy_kl
from strategies import distributions, seeds
from torch import Tensor

from gan_equiv.models.oracle import make_oracle, oracle_dataset
from gan_equiv.models.policies import GRUPolicy, SequencePolicy
from gan_equiv.recsys.ranking import ranking_metrics
from gan_equiv.train.oracle_metrics import (
    distinct_n,
    entropy_per_token,
    nll_oracle,
    nll_test,
    sequence_nll_per_token,
)
from maxent_il.divergences import (
    energy_cost_alignment,
    entropy,
    exact_divergences,
    exact_kl,
    kl_from_log_probs,
    log_probabilities,
    total_variation,
)


def log(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(p)


# --- exact divergences -------------------------------------------------------------------------


@given(st.integers(2, 30).flatmap(lambda n: st.tuples(distributions(n), distributions(n))))
def test_kl_and_tv_properties(pq):
    p, q = pq
    d = exact_divergences(log(p), log(q))
    assert d.kl_pq == exact_kl(log(p), log(q)) and d.kl_qp == exact_kl(log(q), log(p))
    assert d.tv == pytest.approx(total_variation(log(p), log(q)), abs=1e-15)
    assert 0 <= d.tv <= 1 and d.kl_pq >= 0 and d.kl_qp >= 0
    assert d.kl_pq == pytest.approx(scipy_kl(p, q), rel=1e-10, abs=1e-12)  # scipy: inf when q = 0 < p
    assert d.tv <= np.sqrt(d.kl_pq / 2) + 1e-12 and d.tv <= np.sqrt(d.kl_qp / 2) + 1e-12  # Pinsker
    assert exact_kl(log(p), log(p)) == 0.0 and total_variation(log(p), log(p)) == 0.0
    if not np.allclose(p, q, rtol=0, atol=1e-12):
        assert d.kl_pq > 0 and d.kl_qp > 0 and d.tv > 0


@given(seeds(), st.integers(1, 6), st.integers(2, 6))
def test_row_wise_kl_is_the_kl_of_each_row_and_entropy_is_minus_self_cross_terms(seed, m, v):
    """kl_from_log_probs over rows = scipy's KL row by row; H(p) = −Σ p log p = log V − KL(p‖uniform)."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(v), size=m)
    q = rng.dirichlet(np.ones(v), size=m)
    p[:, 0] = 0.0  # a zero of p contributes 0 (0 log 0 = 0)
    p /= p.sum(axis=1, keepdims=True)
    rows = kl_from_log_probs(log_probabilities(p), log_probabilities(q), axis=1)
    np.testing.assert_allclose(rows, [scipy_kl(pi, qi) for pi, qi in zip(p, q, strict=True)], atol=EXACT_TOL)
    uniform = np.full(v, -np.log(v))
    for pi in p:
        kl_uniform = float(kl_from_log_probs(log_probabilities(pi), uniform))
        assert entropy(pi) == pytest.approx(np.log(v) - kl_uniform, abs=EXACT_TOL)
    q_zero = q[0].copy()
    q_zero[1] = 0.0
    assert float(kl_from_log_probs(log_probabilities(p[0]), log_probabilities(q_zero))) == np.inf


def test_kl_zero_cases_and_torch_input():
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.25, 0.5])
    assert exact_kl(log(p), log(q)) == pytest.approx(np.log(2), abs=EXACT_TOL)  # p = 0 terms vanish
    assert exact_kl(log(q), log(p)) == np.inf  # q > 0 where p = 0
    assert total_variation(log(p), log(q)) == pytest.approx(0.5, abs=EXACT_TOL)
    one, other = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    d = exact_divergences(log(one), log(other))
    assert d.kl_pq == d.kl_qp == np.inf and d.tv == 1.0
    got = exact_kl(torch.log(torch.tensor(p, dtype=torch.float32)), torch.log(torch.tensor(q)))
    assert got == pytest.approx(np.log(2), abs=1e-6)


def test_divergence_bad_input():
    good = log(np.full(4, 0.25))
    with pytest.raises(ValueError, match=r"p_log is not normalized: logsumexp = 7.601e\+00"):
        exact_kl(np.zeros(4) + np.log(500), good)
    with pytest.raises(ValueError, match=r"q_log\[1\] = nan"):
        exact_kl(good, np.array([0.0, np.nan, 0, 0]))
    with pytest.raises(ValueError, match="different spaces"):
        total_variation(good, log(np.full(3, 1 / 3)))
    with pytest.raises(ValueError, match="no mass"):
        exact_kl(np.full(4, -np.inf), good)
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        exact_kl(good.reshape(2, 2), good)


# --- energy vs cost ----------------------------------------------------------------------------


@given(seeds(), st.floats(-5, 5).filter(lambda a: abs(a) > 1e-2), st.floats(-10, 10), st.integers(3, 60))
def test_alignment_recovers_an_affine_map_exactly(seed, a, b, n):
    D = np.random.default_rng(seed).normal(size=n)
    res = energy_cost_alignment(D, a * D + b)
    assert res.scale == pytest.approx(a, rel=1e-9) and res.offset == pytest.approx(b, abs=1e-9)
    assert res.pearson == pytest.approx(np.sign(a)) and res.spearman == pytest.approx(np.sign(a))
    assert res.rmse <= 1e-9 * (1 + abs(a) + abs(b)) and res.n == n


def test_alignment_weights_ranks_and_degenerate_cases(rng):
    D = rng.normal(size=50)
    c = 2 * D - 1 + 0.3 * rng.normal(size=50)
    w = rng.random(50)
    res = energy_cost_alignment(D, c, weights=w)
    slope, intercept = np.polyfit(D, c, 1, w=np.sqrt(w))  # polyfit weights multiply residuals
    assert res.scale == pytest.approx(slope, rel=1e-10) and res.offset == pytest.approx(intercept, rel=1e-10)
    resid = c - slope * D - intercept
    assert res.rmse == pytest.approx(np.sqrt((w * resid**2).sum() / w.sum()), rel=1e-10)
    assert energy_cost_alignment(D, c).pearson == pytest.approx(np.corrcoef(D, c)[0, 1], rel=1e-12)
    # zero-weight points are left out, even non-finite ones (e.g. costs off the support)
    c_bad = np.where(np.arange(50) < 5, np.inf, 3 * D + 1)
    w_support = (np.arange(50) >= 5).astype(float)
    res = energy_cost_alignment(D, c_bad, weights=w_support)
    assert res.n == 45 and res.scale == pytest.approx(3) and res.pearson == pytest.approx(1)
    # monotone but not affine: Spearman 1, Pearson < 1, positive RMSE
    res = energy_cost_alignment(D, np.exp(2 * D))
    assert res.spearman == pytest.approx(1) and res.pearson < 0.99 and res.rmse > 0
    flat = energy_cost_alignment(np.ones(5), np.arange(5.0))
    assert flat.scale == 0 and flat.offset == 2 and np.isnan(flat.pearson) and np.isnan(flat.spearman)


def test_alignment_bad_input():
    with pytest.raises(ValueError, match="differ in shape"):
        energy_cost_alignment(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match=r"cost_values\[1\] = inf is not finite"):
        energy_cost_alignment(np.arange(3.0), [0, np.inf, 1])
    with pytest.raises(ValueError, match=r"weights\[0\] = -1.0"):
        energy_cost_alignment(np.arange(3.0), np.arange(3.0), weights=[-1, 1, 1])
    with pytest.raises(ValueError, match="at least 2 points"):
        energy_cost_alignment(np.arange(3.0), np.arange(3.0), weights=[0, 1, 0])


# --- oracle metrics ----------------------------------------------------------------------------


class Sharpened(SequencePolicy):
    """The oracle at temperature τ < 1: a collapsed generator that NLL-oracle rewards."""

    def __init__(self, base: SequencePolicy, temperature: float) -> None:
        super().__init__(base.n_items, base.horizon)
        self.base, self.temperature = base, temperature

    def initial_state(self, n: int) -> Tensor:
        return self.base.initial_state(n)

    def logits(self, state: Tensor) -> Tensor:
        return self.base.logits(state) / self.temperature

    def advance(self, state: Tensor, items: Tensor) -> Tensor:
        return self.base.advance(state, items)


@pytest.fixture(scope="module")
def tiny_oracle():
    oracle = make_oracle(n_items=5, horizon=3, seed=2, dtype=torch.float64)
    logp = oracle.all_log_probs()
    return oracle, logp, float(-(logp.exp() * logp).sum()) / 3  # exact entropy per token


def z_ok(estimate: float, exact: float, stderr: float) -> bool:
    return abs(estimate - exact) <= MC_Z_SCORE * stderr


def test_oracle_nll_of_its_own_samples_is_its_entropy_rate(tiny_oracle):
    oracle, _, h_rate = tiny_oracle
    samples = oracle_dataset(oracle, 4000, seed=1)
    per_seq = sequence_nll_per_token(oracle, samples)
    se = float(per_seq.std()) / np.sqrt(4000)
    assert z_ok(nll_oracle(oracle, samples), h_rate, se)
    assert z_ok(nll_test(oracle, samples), h_rate, se)
    est = entropy_per_token(oracle, 4000, torch.Generator().manual_seed(2), batch_size=1000)
    assert est.n == 4000 and z_ok(est.mean, h_rate, est.stderr)
    assert torch.allclose(sequence_nll_per_token(oracle, samples[:50], batch_size=7), per_seq[:50])


def test_nll_test_is_the_cross_entropy_and_collapse_fools_nll_oracle(tiny_oracle):
    oracle, logp, h_rate = tiny_oracle
    torch.manual_seed(0)
    gen = GRUPolicy(5, 3, embed_dim=4, hidden_dim=4, dtype=torch.float64)
    cross = float(-(logp.exp() * gen.all_log_probs().detach()).sum()) / 3
    heldout = oracle_dataset(oracle, 4000, seed=3)
    se = float(sequence_nll_per_token(gen, heldout).std()) / np.sqrt(4000)
    assert z_ok(nll_test(gen, heldout), cross, se) and cross > h_rate
    # a sharpened oracle beats the oracle itself on NLL-oracle but loses on NLL-test and entropy
    sharp = Sharpened(oracle, 0.3)
    fake = sharp.sample(4000, generator=torch.Generator().manual_seed(4))
    assert nll_oracle(oracle, fake) < h_rate - 0.1
    assert nll_test(sharp, heldout) > h_rate + 0.1
    assert entropy_per_token(sharp, 2000, torch.Generator().manual_seed(5)).mean < h_rate - 0.1


def test_oracle_metric_bad_input(tiny_oracle):
    oracle, _, _ = tiny_oracle
    with pytest.raises(ValueError, match=r"item id 7 is outside 0..4"):
        nll_oracle(oracle, torch.tensor([[0, 1, 7]]))
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        nll_test(oracle, torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="n_samples must be an integer ≥ 2"):
        entropy_per_token(oracle, 1)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        nll_oracle(oracle, torch.zeros(2, 3, dtype=torch.long), batch_size=0)


def test_distinct_n_hand_computed():
    seqs = np.array([[0, 1, 0, 1], [2, 2, 2, 2]])
    assert distinct_n(seqs, 1) == 3 / 8
    assert distinct_n(seqs, 2) == 3 / 6  # (0,1), (1,0), (2,2)
    assert distinct_n(torch.as_tensor(seqs), 4) == 1.0
    assert distinct_n(np.arange(12).reshape(3, 4), 2) == 1.0
    with pytest.raises(ValueError, match=r"n must be an integer in 1..T=4, got 5"):
        distinct_n(seqs, 5)
    with pytest.raises(ValueError, match="integer item ids"):
        distinct_n(seqs.astype(float), 1)


# --- ranking -----------------------------------------------------------------------------------


def test_ranking_without_ties_hand_computed():
    scores = np.array([[0.1, 0.5, 0.3, 0.9], [0.9, 0.1, 0.2, 0.3]])
    m = ranking_metrics(scores, [2, 0], ks=(1, 2, 3))  # ranks 3 and 1
    assert m["HR@1"] == 0.5 and m["HR@2"] == 0.5 and m["HR@3"] == 1.0
    assert m["NDCG@3"] == pytest.approx((1 / np.log2(4) + 1) / 2)
    assert m["MRR@3"] == pytest.approx((1 / 3 + 1) / 2) and m["MRR@2"] == 0.5
    assert set(m) == {f"{k}@{n}" for k in ("HR", "NDCG", "MRR") for n in (1, 2, 3)}
    assert ranking_metrics(torch.tensor(scores), torch.tensor([2, 0]), ks=(3,)) == {
        k: v for k, v in m.items() if k.endswith("@3")
    }


def test_ranking_ties_hand_computed():
    flat = np.ones((1, 4))  # the target ties with everything: rank uniform on 1..4
    m = ranking_metrics(flat, [0], ks=(1, 2, 4))
    assert m["HR@1"] == 0.25 and m["HR@2"] == 0.5 and m["HR@4"] == 1.0
    assert m["NDCG@2"] == pytest.approx((1 + 1 / np.log2(3)) / 4)
    assert m["MRR@2"] == pytest.approx((1 + 1 / 2) / 4)
    p = ranking_metrics(flat, [0], ks=(1, 4), ties="pessimistic")  # rank 4
    assert p["HR@1"] == 0 and p["HR@4"] == 1 and p["NDCG@4"] == pytest.approx(1 / np.log2(5))
    assert p["MRR@4"] == 0.25
    # one item above, the target tied with one other: rank 2 or 3
    m = ranking_metrics(np.array([[3.0, 1.0, 1.0, 0.0]]), [1], ks=(2, 10))
    assert m["HR@2"] == 0.5 and m["HR@10"] == 1.0
    assert m["MRR@10"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert m["NDCG@2"] == pytest.approx(0.5 / np.log2(3))


@given(seeds(), st.integers(1, 5), st.integers(1, 6))
def test_expected_ties_equal_the_average_over_all_tie_breaking_orders(seed, V, k):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 3, size=(3, V)).astype(float)  # many ties
    targets = rng.integers(0, V, size=3)
    got = ranking_metrics(scores, targets, ks=(k,))
    brute = {"HR": 0.0, "NDCG": 0.0, "MRR": 0.0}
    perms = list(itertools.permutations(range(V)))
    for row, y in zip(scores, targets, strict=True):
        for perm in perms:  # a random tie-break: order by (−score, position in perm)
            order = sorted(range(V), key=lambda j, row=row, perm=perm: (-row[j], perm.index(j)))
            r = order.index(y) + 1
            if r <= k:
                brute["HR"] += 1
                brute["NDCG"] += 1 / np.log2(r + 1)
                brute["MRR"] += 1 / r
    for name, total in brute.items():
        assert got[f"{name}@{k}"] == pytest.approx(total / (3 * len(perms)), abs=1e-12)


def test_constant_scorer_gets_the_random_baseline():
    m = ranking_metrics(np.zeros((7, 50)), np.arange(7), ks=(10,))
    assert m["HR@10"] == pytest.approx(10 / 50)
    assert m["MRR@10"] == pytest.approx(sum(1 / r for r in range(1, 11)) / 50)


def test_ranking_bad_input():
    s = np.zeros((2, 4))
    with pytest.raises(ValueError, match=r"target item 4 is outside 0..3"):
        ranking_metrics(s, [0, 4])
    with pytest.raises(ValueError, match="targets must be 2 integer item ids"):
        ranking_metrics(s, [0.0, 1.0])
    with pytest.raises(ValueError, match="NaN"):
        ranking_metrics(np.array([[0.0, np.nan]]), [0])
    with pytest.raises(ValueError, match=r"shape \(N, V\)"):
        ranking_metrics(np.zeros(4), [0])
    with pytest.raises(ValueError, match=r"ks must be positive integers, got \[0\]"):
        ranking_metrics(s, [0, 1], ks=(0,))
    with pytest.raises(ValueError, match="ties must be"):
        ranking_metrics(s, [0, 1], ties="optimistic")
