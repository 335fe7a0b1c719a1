"""Tests of gan_equiv.train.problems: exact problems, the SeqGAN-style LSTM oracle, restricted unpickling."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from conftest import EXACT_TOL, FLOAT32_TOL, MC_Z_SCORE
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import logsumexp
from strategies import seeds

from gan_equiv.models.oracle import (
    SEQGAN_PARAM_NAMES,
    LSTMOracle,
    load_seqgan_oracle,
    load_seqgan_oracle_params,
    make_oracle,
    oracle_dataset,
)
from gan_equiv.train.problems import ExactProblem, gibbs_problem, markov_chain_problem
from maxent_il.dynamic import soft_bellman
from maxent_il.space import EnumerationTooLargeError

N_SAMPLES = 4000


def assert_samples_match(problem: ExactProblem) -> None:
    """z-tests: first-item frequencies and the mean log-probability of the samples vs exact values."""
    V, n = problem.space.n_items, problem.samples.shape[0]
    p = problem.probabilities
    first = p.reshape(V, -1).sum(axis=1)  # exact P(s_1 = a)
    freq = np.bincount(problem.samples[:, 0], minlength=V) / n
    se = np.sqrt(first * (1 - first) / n)
    ok = se > 0
    assert np.all(np.abs(freq - first)[ok] <= MC_Z_SCORE * se[ok])
    lp = problem.log_prob(problem.samples)
    mean_lp, var_lp = -problem.entropy, p @ (problem.log_probs + problem.entropy) ** 2
    assert abs(lp.mean() - mean_lp) <= MC_Z_SCORE * np.sqrt(var_lp / n) + 1e-12


# --- exact problems ----------------------------------------------------------------------------


@given(
    st.integers(2, 4), st.integers(1, 4), st.sampled_from([0.3, 1.0, 3.0]), seeds()
)  # fmt: skip
def test_markov_problem_is_normalized_markov_and_sampled_from_p(V, T, alpha, seed):
    prob = markov_chain_problem(V, T, n_samples=N_SAMPLES, concentration=alpha, seed=seed)
    assert prob.log_probs.shape == (V**T,) and prob.log_probs.dtype == np.float64
    assert abs(logsumexp(prob.log_probs)) <= EXACT_TOL
    # θ holds −log of a stochastic initial vector and transition matrix, so c = −log p (log Z = 0)
    np.testing.assert_allclose(np.exp(-prob.theta[: V * V]).reshape(V, V).sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.exp(-prob.theta[V * V :]).sum(), 1.0, atol=1e-12)
    np.testing.assert_allclose(prob.costs(), -prob.log_probs, atol=1e-9)
    # Markov property: the true conditional given h depends only on the last item
    if T >= 3:
        prefixes = prob.space.__class__(V, 2).all_sequences()
        cond = prob.next_item_log_probs(prefixes)
        expected = -prob.theta[: V * V].reshape(V, V)[prefixes[:, 1]]
        np.testing.assert_allclose(cond, expected, atol=1e-9)
    assert prob.samples.shape == (N_SAMPLES, T) and prob.samples.dtype == np.int64
    assert_samples_match(prob)


@given(st.sampled_from(["last", "time_last", "history"]), st.integers(2, 3), st.integers(1, 4), seeds())
def test_gibbs_problem_matches_maxent_il_and_is_sampled_from_it(state, V, T, seed):
    prob = gibbs_problem(V, T, state=state, scale=1.5, n_samples=N_SAMPLES, seed=seed)
    assert abs(logsumexp(prob.log_probs)) <= EXACT_TOL
    dp = soft_bellman(prob.features, prob.theta)
    seqs = prob.space.all_sequences()
    np.testing.assert_allclose(prob.log_probs, dp.log_prob(seqs), atol=1e-9)
    np.testing.assert_allclose(prob.log_probs, -prob.costs() - dp.log_partition, atol=1e-9)
    assert_samples_match(prob)


@given(st.sampled_from(["markov", "gibbs"]), st.integers(2, 3), st.integers(1, 4), seeds())
def test_true_conditionals_multiply_back_to_p(kind, V, T, seed):
    make = markov_chain_problem if kind == "markov" else gibbs_problem
    prob = make(V, T, n_samples=10, seed=seed)
    logp = prob.tabular_policy().all_log_probs().detach().numpy()
    np.testing.assert_allclose(logp, prob.log_probs, atol=1e-9)
    emp = prob.empirical_distribution()
    assert emp.shape == (V**T,) and abs(emp.sum() - 1) < 1e-12
    np.testing.assert_array_equal(emp * 10, np.bincount(prob.space.encode(prob.samples), minlength=V**T))


def test_problems_are_reproducible_from_the_seed():
    a, b = markov_chain_problem(3, 3, seed=7), markov_chain_problem(3, 3, seed=7)
    np.testing.assert_array_equal(a.log_probs, b.log_probs)
    np.testing.assert_array_equal(a.samples, b.samples)
    c = markov_chain_problem(3, 3, seed=8)
    assert not np.array_equal(a.log_probs, c.log_probs)
    assert "seed 7" in a.description and a.name == "markov(V=3,T=3)"


def test_exact_problem_bad_input():
    with pytest.raises(EnumerationTooLargeError, match="V=10, T=7"):
        markov_chain_problem(10, 7)
    with pytest.raises(EnumerationTooLargeError, match="V=40, T=4"):
        gibbs_problem(40, 4)
    with pytest.raises(ValueError, match="n_samples must be a positive integer, got 0"):
        markov_chain_problem(3, 2, n_samples=0)
    with pytest.raises(ValueError, match=r"concentration .* got -1"):
        markov_chain_problem(3, 2, concentration=-1)
    with pytest.raises(ValueError, match=r"scale .* got 0"):
        gibbs_problem(3, 2, scale=0)
    with pytest.raises(ValueError, match="unknown feature state 'foo'"):
        gibbs_problem(3, 2, state="foo")
    prob = markov_chain_problem(3, 3, n_samples=5)
    with pytest.raises(ValueError, match=r"prefix item 3 is outside 0..2"):
        prob.next_item_log_probs([[3]])
    with pytest.raises(ValueError, match="t < T=3"):
        prob.next_item_log_probs([[0, 1, 2]])


# --- the LSTM oracle ---------------------------------------------------------------------------


def seqgan_reference_log_probs(params: list[np.ndarray], seqs: np.ndarray, start: int = 0) -> np.ndarray:
    """SeqGAN's TARGET_LSTM written out in numpy, gate by gate: log p(s_t | h_t), shape (N, T)."""
    emb, Wi, Ui, bi, Wf, Uf, bf, Wog, Uog, bog, Wc, Uc, bc, Wo, bo = (np.float64(p) for p in params)

    def sigmoid(z):
        return 1 / (1 + np.exp(-z))

    n, T = seqs.shape
    h = c = np.zeros((n, Wi.shape[1]))
    x = emb[np.full(n, start)]
    out = np.empty((n, T))
    for t in range(T):
        i = sigmoid(x @ Wi + h @ Ui + bi)
        f = sigmoid(x @ Wf + h @ Uf + bf)
        o = sigmoid(x @ Wog + h @ Uog + bog)
        c = f * c + i * np.tanh(x @ Wc + h @ Uc + bc)
        h = o * np.tanh(c)
        logits = h @ Wo + bo
        logp = logits - logsumexp(logits, axis=1, keepdims=True)
        out[:, t] = logp[np.arange(n), seqs[:, t]]
        x = emb[seqs[:, t]]
    return out


def synthetic_seqgan_params(V=7, E=3, H=4, seed=0, dtype=np.float32) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = [(V, E)] + [(E, H), (H, H), (H,)] * 4 + [(H, V), (V,)]
    return [rng.normal(size=s).astype(dtype) for s in shapes]


def test_oracle_is_reproducible_from_its_seed_and_normal():
    a, b = make_oracle(n_items=50, horizon=8, seed=3), make_oracle(n_items=50, horizon=8, seed=3)
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.equal(pa, pb), name
    c = make_oracle(n_items=50, horizon=8, seed=4)
    assert not torch.equal(a.get_parameter("Wo"), c.get_parameter("Wo"))
    assert [n for n, _ in a.named_parameters()] == list(SEQGAN_PARAM_NAMES)
    assert not any(p.requires_grad for p in a.parameters())
    flat = torch.cat([p.flatten().double() for p in a.parameters()])
    assert abs(flat.mean()) < 5 / np.sqrt(flat.numel()) and abs(flat.std() - 1) < 0.05  # N(0, 1)
    d64 = make_oracle(n_items=50, horizon=8, seed=3, dtype=torch.float64)
    assert torch.equal(d64.get_parameter("Wi").float(), a.get_parameter("Wi"))


def test_oracle_all_log_probs_normalize_and_first_item_frequencies_match():
    oracle = make_oracle(n_items=5, horizon=3, seed=1, dtype=torch.float64)
    logp = oracle.all_log_probs()
    assert abs(float(torch.logsumexp(logp, 0))) <= EXACT_TOL
    data = oracle_dataset(oracle, 3000, seed=0, batch_size=700)
    assert data.shape == (3000, 3) and data.dtype == torch.int64
    assert int(data.min()) >= 0 and int(data.max()) < 5
    first = logp.exp().reshape(5, -1).sum(1).numpy()
    freq = np.bincount(data[:, 0].numpy(), minlength=5) / 3000
    assert np.all(np.abs(freq - first) <= MC_Z_SCORE * np.sqrt(first * (1 - first) / 3000))


def test_oracle_dataset_is_reproducible_and_batched():
    oracle = make_oracle(n_items=50, horizon=8, seed=0)
    a, b = oracle_dataset(oracle, 1000, seed=5), oracle_dataset(oracle, 1000, seed=5)
    assert torch.equal(a, b) and a.shape == (1000, 8)
    assert not torch.equal(a, oracle_dataset(oracle, 1000, seed=6))
    assert oracle_dataset(oracle, 130, seed=5, batch_size=64).shape == (130, 8)
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        oracle_dataset(oracle, 0)


def test_oracle_step_is_seqgans_target_lstm():
    params = synthetic_seqgan_params(dtype=np.float64)
    oracle = LSTMOracle.from_seqgan_params(params, horizon=5, dtype=torch.float64)
    assert (oracle.n_items, oracle.embed_dim, oracle.hidden_dim) == (7, 3, 4)
    seqs = np.random.default_rng(1).integers(0, 7, size=(20, 5))
    got = oracle.step_log_probs(torch.as_tensor(seqs)).numpy()
    np.testing.assert_allclose(got, seqgan_reference_log_probs(params, seqs), atol=1e-12)
    for mine, theirs in zip(oracle.to_seqgan_params(), params, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    f32 = LSTMOracle.from_seqgan_params(params, horizon=5)
    np.testing.assert_allclose(f32.step_log_probs(torch.as_tensor(seqs)).numpy(), got, atol=FLOAT32_TOL)


def test_oracle_bad_input():
    with pytest.raises(ValueError, match=r"start_token 9 is outside 0..4"):
        LSTMOracle(5, 3, start_token=9)
    with pytest.raises(ValueError, match="hidden_dim must be a positive integer, got 0"):
        LSTMOracle(5, 3, hidden_dim=0)
    params = synthetic_seqgan_params()
    with pytest.raises(ValueError, match="list of 15 arrays"):
        LSTMOracle.from_seqgan_params(params[:14])
    bad = list(params)
    bad[3] = np.zeros(5, np.float32)
    with pytest.raises(ValueError, match=r"parameter 3 \(bi\) has shape \(5,\), expected \(4,\)"):
        LSTMOracle.from_seqgan_params(bad)
    bad[3] = np.full(4, np.nan, np.float32)
    with pytest.raises(ValueError, match=r"parameter 3 \(bi\) has non-finite"):
        LSTMOracle.from_seqgan_params(bad)


# --- restricted unpickling of SeqGAN's published parameters -----------------------------------


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_seqgan_params_round_trip_through_the_restricted_unpickler(tmp_path, protocol):
    params = synthetic_seqgan_params(seed=protocol)
    path = tmp_path / "target_params_py3.pkl"
    path.write_bytes(pickle.dumps(params, protocol=protocol))
    loaded = load_seqgan_oracle_params(path)
    assert len(loaded) == 15
    for a, b in zip(loaded, params, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    oracle = load_seqgan_oracle(path, horizon=6, dtype=torch.float64)
    seqs = np.random.default_rng(0).integers(0, 7, size=(4, 6))
    np.testing.assert_allclose(
        oracle.step_log_probs(torch.as_tensor(seqs)).numpy(),
        seqgan_reference_log_probs(params, seqs),
        atol=1e-10,
    )


class _Exploit:
    def __reduce__(self):
        return (os.system, ("exit 0",))


@pytest.mark.parametrize(
    ("payload", "refused"),
    [
        (b"cos\nsystem\n(S'exit 0'\ntR.", "os.system"),
        (pickle.dumps([np.zeros(2), _Exploit()], protocol=2), f"{os.system.__module__}.system"),
        (b"cbuiltins\neval\n(S'1+1'\ntR.", "builtins.eval"),
        (b"cnumpy\nload\n(S'x'\ntR.", "numpy.load"),
        (b"c_codecs\nencode\n(S'abc'\nS'rot13'\ntR.", "encoding 'rot13'"),
    ],
)
def test_restricted_unpickler_refuses_everything_but_numpy_arrays(tmp_path, monkeypatch, payload, refused):
    calls = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a))  # in case anything slipped through
    path = tmp_path / "evil.pkl"
    path.write_bytes(payload)
    with pytest.raises(pickle.UnpicklingError, match=refused):
        load_seqgan_oracle_params(path)
    assert calls == []


def test_restricted_unpickler_checks_the_content(tmp_path):
    path = tmp_path / "p.pkl"
    path.write_bytes(pickle.dumps({"a": np.zeros(2)}))
    with pytest.raises(ValueError, match="list of 15 arrays, got dict"):
        load_seqgan_oracle_params(path)
    path.write_bytes(pickle.dumps(synthetic_seqgan_params()[:3]))
    with pytest.raises(ValueError, match="got 3 entries"):
        load_seqgan_oracle_params(path)
    objs = synthetic_seqgan_params()
    objs[2] = np.array([1, "a"], dtype=object)
    path.write_bytes(pickle.dumps(objs))
    with pytest.raises(ValueError, match=r"entry 2 \(Ui\) is object, not a numeric array"):
        load_seqgan_oracle_params(path)
