"""Unit tests of the EB-SeqGAN building blocks: generators, energies, losses and their input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import EXACT_TOL, MC_Z_SCORE
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from strategies import random_policy, seeds

from gan_equiv.losses import (
    check_margin,
    ebgan_discriminator_loss,
    ebgan_generator_objective,
    gan_discriminator_loss,
    gan_gcl_discriminator_loss,
    gan_gcl_generator_loss,
    gan_gcl_logits,
    gan_generator_objective,
    maxent_c_step_objective,
    maxent_q_step_objective,
    policy_gradient_surrogate,
    seqgan_discriminator_loss,
    seqgan_generator_reward,
)
from gan_equiv.models.discriminators import GANGCLDiscriminator, SeqGANClassifier
from gan_equiv.models.energies import AutoencoderEnergy, CNNEnergy, LinearEnergy, TabularEnergy
from gan_equiv.models.policies import GRUPolicy, SequencePolicy, TabularPolicy, sample_categorical
from gan_equiv.models.sasrec import SASRecPolicy
from maxent_il.features import STATE_KINDS, CustomFeatures, StateActionFeatures
from maxent_il.space import SequenceSpace

POLICY_KINDS = ("tabular", "gru", "lstm")


def make_policy(kind: str, n_items: int, horizon: int, seed: int, *, scale: float = 1.0) -> SequencePolicy:
    """A seeded random float64 policy (see strategies.random_policy)."""
    return random_policy(kind, n_items, horizon, seed, scale=scale)


def all_sequences(space: SequenceSpace) -> torch.Tensor:
    return torch.as_tensor(space.all_sequences())


def assert_counts_match(counts: np.ndarray, probs: np.ndarray) -> None:
    """Each count within MC_Z_SCORE binomial standard errors, and a chi-square test not rejected."""
    n = counts.sum()
    expected = n * probs
    sd = np.sqrt(n * probs * (1 - probs))
    z = np.abs(counts - expected) / np.where(sd > 0, sd, 1.0)
    assert np.all(z <= MC_Z_SCORE), f"largest z-score {z.max():.2f}"
    assert np.all(counts[probs == 0] == 0)
    support = probs > 0
    if support.sum() > 1:
        assert stats.chisquare(counts[support], expected[support]).pvalue > 1e-6


# --- policies -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", POLICY_KINDS)
@given(n_items=st.integers(2, 4), horizon=st.integers(1, 3), seed=seeds())
def test_all_log_probs_are_normalized(kind: str, n_items: int, horizon: int, seed: int) -> None:
    policy = make_policy(kind, n_items, horizon, seed, scale=2.0)
    log_p = policy.all_log_probs().detach()
    assert log_p.shape == (n_items**horizon,)
    assert abs(float(torch.logsumexp(log_p, dim=0))) <= EXACT_TOL


@pytest.mark.parametrize("kind", POLICY_KINDS)
@given(n_items=st.integers(2, 4), horizon=st.integers(1, 4), seed=seeds())
def test_step_log_probs_match_next_item_log_probs(kind: str, n_items: int, horizon: int, seed: int) -> None:
    policy = make_policy(kind, n_items, horizon, seed, scale=2.0)
    seqs = torch.as_tensor(np.random.default_rng(seed).integers(0, n_items, size=(7, horizon)))
    steps = policy.step_log_probs(seqs)
    assert steps.shape == (7, horizon)
    for t in range(horizon):
        expected = policy.next_item_log_probs(seqs[:, :t]).gather(1, seqs[:, t : t + 1]).squeeze(1)
        assert torch.allclose(steps[:, t], expected, rtol=0, atol=EXACT_TOL)
    assert torch.allclose(policy.log_prob(seqs), steps.sum(dim=1), rtol=0, atol=EXACT_TOL)


def test_prefix_states_shapes_and_tabular_content() -> None:
    seqs = torch.tensor([[0, 2, 1], [2, 2, 0]])
    tab = TabularPolicy(3, 3).prefix_states(seqs)
    assert tab.shape == (2, 4, 2)
    assert tab[:, :, 0].tolist() == [[0, 1, 2, 3]] * 2  # depth
    for t in range(4):  # index of the prefix s_1 … s_t in base V
        assert tab[:, t, 1].tolist() == [int(SequenceSpace(3, t).encode(r[:t])[0]) if t else 0 for r in seqs]
    gru = GRUPolicy(3, 3, hidden_dim=5, dtype=torch.float64).prefix_states(seqs)
    lstm = GRUPolicy(3, 3, hidden_dim=5, cell="lstm", dtype=torch.float64).prefix_states(seqs)
    assert gru.shape == (2, 4, 5) and lstm.shape == (2, 4, 10)


@pytest.mark.parametrize("kind", POLICY_KINDS)
def test_complete_keeps_prefixes_and_is_reproducible(kind: str) -> None:
    policy = make_policy(kind, 3, 4, seed=3)
    rng = np.random.default_rng(0)
    seqs = torch.as_tensor(rng.integers(0, 3, size=(50, 4)))
    lengths = torch.as_tensor(rng.integers(0, 5, size=50))
    out = policy.complete(seqs, lengths, generator=torch.Generator().manual_seed(11))
    again = policy.complete(seqs, lengths, generator=torch.Generator().manual_seed(11))
    assert out.dtype == torch.int64 and out.shape == (50, 4)
    assert torch.equal(out, again)
    keep = torch.arange(4)[None, :] < lengths[:, None]
    assert torch.equal(out[keep], seqs[keep])
    assert int(out.min()) >= 0 and int(out.max()) < 3
    assert torch.equal(policy.complete(seqs, torch.full((50,), 4)), seqs)
    from_empty = policy.complete(
        seqs, torch.zeros(50, dtype=torch.long), generator=torch.Generator().manual_seed(5)
    )
    assert torch.equal(from_empty, policy.sample(50, generator=torch.Generator().manual_seed(5)))


def test_complete_samples_the_conditional_distribution() -> None:
    """Completions of the prefix (1,) follow p(s_2 s_3 | s_1 = 1) (z-test and chi-square)."""
    policy = make_policy("tabular", 2, 3, seed=4, scale=1.5)
    n = 20000
    prefix = torch.ones(n, 3, dtype=torch.long)
    out = policy.complete(prefix, torch.ones(n, dtype=torch.long), generator=torch.Generator().manual_seed(1))
    assert torch.all(out[:, 0] == 1)
    counts = np.bincount(SequenceSpace(2, 3).encode(out.numpy()) - 4, minlength=4)
    probs = policy.all_log_probs().detach().exp().numpy()[4:]
    assert_counts_match(counts, probs / probs.sum())


@pytest.mark.parametrize("kind", POLICY_KINDS)
def test_sample_frequencies_match_all_log_probs(kind: str) -> None:
    space = SequenceSpace(3, 2)
    policy = make_policy(kind, 3, 2, seed=2, scale=1.5)
    draws = policy.sample(30000, generator=torch.Generator().manual_seed(2))
    counts = np.bincount(space.encode(draws.numpy()), minlength=space.size)
    assert_counts_match(counts, policy.all_log_probs().detach().exp().numpy())


def test_sample_categorical_never_draws_zero_probability_items() -> None:
    inf = float("inf")
    rows = torch.tensor(
        [
            [-inf, 0.3, -inf, 1.0, -inf],  # zero-probability items first, in the middle and last
            [2.0, -inf, -inf, -inf, -inf],  # one possible item
            [-inf, -inf, -inf, -inf, 0.0],
        ],
        dtype=torch.float64,
    )
    n = 20000
    logits = rows.repeat_interleave(n, dim=0)
    draws = sample_categorical(logits, torch.Generator().manual_seed(0)).reshape(3, n)
    assert draws.dtype == torch.int64
    assert set(draws[0].tolist()) <= {1, 3}
    assert torch.all(draws[1] == 0) and torch.all(draws[2] == 4)
    counts = np.bincount(draws[0].numpy(), minlength=5)
    assert_counts_match(counts, torch.softmax(rows[0], 0).numpy())


def test_sample_categorical_matches_probabilities_and_is_reproducible() -> None:
    probs = np.array([0.05, 0.5, 0.15, 0.3])
    logits = torch.log(torch.as_tensor(probs)).expand(40000, 4).float()  # float32 logits work too
    draws = sample_categorical(logits, torch.Generator().manual_seed(9))
    assert torch.equal(draws, sample_categorical(logits, torch.Generator().manual_seed(9)))
    assert_counts_match(np.bincount(draws.numpy(), minlength=4), probs)


@pytest.mark.parametrize("source_kind", POLICY_KINDS)
def test_set_conditionals_round_trip(source_kind: str) -> None:
    """Any autoregressive p_G copies exactly into a tabular policy, and reads back unchanged."""
    source = make_policy(source_kind, 3, 3, seed=8, scale=2.0)

    def conditionals(prefixes: np.ndarray) -> np.ndarray:
        return source.next_item_log_probs(torch.as_tensor(prefixes)).detach().numpy()

    copy = TabularPolicy(3, 3).set_conditionals(conditionals)
    assert torch.allclose(copy.all_log_probs(), source.all_log_probs(), rtol=0, atol=EXACT_TOL)
    for d in range(3):
        prefixes = SequenceSpace(3, d).all_sequences() if d else np.zeros((1, 0), np.int64)
        read_back = copy.next_item_log_probs(torch.as_tensor(prefixes)).detach().numpy()
        assert np.allclose(read_back, conditionals(prefixes), rtol=0, atol=EXACT_TOL)


def test_tabular_policy_has_one_row_per_history() -> None:
    assert TabularPolicy(3, 3).table.shape == (1 + 3 + 9, 3)
    uniform = TabularPolicy(4, 2).all_log_probs()
    assert torch.allclose(uniform, torch.full((16,), -np.log(16.0), dtype=torch.float64))


def test_gru_and_lstm_cells() -> None:
    torch.manual_seed(0)
    gru = GRUPolicy(3, 3, embed_dim=4, hidden_dim=6, dtype=torch.float64)
    torch.manual_seed(0)
    lstm = GRUPolicy(3, 3, embed_dim=4, hidden_dim=6, cell="lstm", dtype=torch.float64)
    assert isinstance(gru.cell, torch.nn.GRUCell) and isinstance(lstm.cell, torch.nn.LSTMCell)
    assert gru.cell.weight_ih.shape == (3 * 6, 4) and lstm.cell.weight_ih.shape == (4 * 6, 4)
    assert gru.initial_state(2).shape == (2, 6) and lstm.initial_state(2).shape == (2, 12)
    for policy in (gru, lstm):
        assert abs(float(torch.logsumexp(policy.all_log_probs().detach(), 0))) <= EXACT_TOL
    assert not torch.allclose(gru.all_log_probs(), lstm.all_log_probs())
    assert GRUPolicy(3, 2).head.weight.dtype == torch.float32  # float32 by default (training)
    with pytest.raises(ValueError, match="unknown cell 'rnn'"):
        GRUPolicy(3, 3, cell="rnn")


@pytest.mark.parametrize("kind", POLICY_KINDS)
def test_policies_reject_bad_sequences(kind: str) -> None:
    policy = make_policy(kind, 3, 2, seed=0)
    with pytest.raises(ValueError, match=r"item id 3 is outside 0\.\.2 \(V=3\)"):
        policy.log_prob(torch.tensor([[0, 3]]))
    with pytest.raises(ValueError, match=r"item id -1 is outside 0\.\.2"):
        policy.step_log_probs(torch.tensor([[-1, 0]]))
    with pytest.raises(ValueError, match=r"shape \(N, 2\), got \(1, 3\)"):
        policy.log_prob(torch.tensor([[0, 1, 2]]))
    with pytest.raises(ValueError, match=r"shape \(N, 2\), got \(2,\)"):
        policy.log_prob(torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="integer item ids"):
        policy.log_prob(torch.tensor([[0.0, 1.0]]))
    with pytest.raises(ValueError, match="integer item ids"):
        policy.log_prob(np.array([[True, False]]))
    with pytest.raises(ValueError, match="t < T=2"):
        policy.next_item_log_probs(torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match=r"positive (number|integer)"):
        policy.sample(0)
    with pytest.raises(ValueError, match="prefix_lengths"):
        policy.complete(torch.zeros(2, 2, dtype=torch.long), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="prefix_lengths"):
        policy.complete(torch.zeros(2, 2, dtype=torch.long), torch.tensor([1]))
    with pytest.raises(ValueError, match="n_items must be a positive integer"):
        TabularPolicy(0, 2)


@pytest.mark.parametrize("kind", ("tabular", "gru"))
def test_next_item_log_probs_rejects_out_of_range_prefixes(kind: str) -> None:
    policy = make_policy(kind, 3, 3, seed=0)
    with pytest.raises(ValueError, match=r"outside 0\.\.2"):
        policy.next_item_log_probs(torch.tensor([[3]]))


# --- energies -----------------------------------------------------------------------------------------
@given(n_items=st.integers(2, 4), horizon=st.integers(1, 4))
def test_tabular_energy_indexing_matches_space_encode(n_items: int, horizon: int) -> None:
    space = SequenceSpace(n_items, horizon)
    energy = TabularEnergy(n_items, horizon, values=np.arange(space.size, dtype=np.float64))
    seqs = np.random.default_rng(n_items * 10 + horizon).integers(0, n_items, size=(20, horizon))
    assert np.array_equal(energy(torch.as_tensor(seqs)).detach().numpy(), space.encode(seqs))
    assert np.array_equal(energy(all_sequences(space)).detach().numpy(), np.arange(space.size))


@pytest.mark.parametrize("state", STATE_KINDS)
@given(n_items=st.integers(2, 3), horizon=st.integers(1, 3), seed=seeds())
def test_linear_energy_equals_feature_costs(state: str, n_items: int, horizon: int, seed: int) -> None:
    space = SequenceSpace(n_items, horizon)
    features = StateActionFeatures(space, state)
    theta = np.random.default_rng(seed).normal(size=features.dim)
    energy = LinearEnergy(features, theta=theta)
    seqs = space.all_sequences()
    values = energy(torch.as_tensor(seqs))
    assert values.shape == (space.size,) and values.dtype == torch.float64
    assert np.allclose(values.detach().numpy(), features.costs(theta, seqs), rtol=0, atol=EXACT_TOL)
    assert np.array_equal(energy.feature_counts(torch.as_tensor(seqs)).numpy(), features.counts(seqs))
    (grad,) = torch.autograd.grad(values.sum(), energy.theta)  # ∇_θ Σ_S θ·f(S) = Σ_S f(S)
    assert np.allclose(grad.numpy(), features.counts(seqs).sum(axis=0), rtol=0, atol=EXACT_TOL)


def test_linear_energy_with_custom_features() -> None:
    space = SequenceSpace(3, 3)

    def fn(seqs: np.ndarray) -> np.ndarray:  # not decomposable: a product of the end items
        return np.stack([seqs.sum(1), (seqs == 0).sum(1), seqs[:, 0] * seqs[:, -1]], axis=1).astype(float)

    features = CustomFeatures(space, fn, 3)
    theta = np.array([0.5, -1.25, 2.0])
    energy = LinearEnergy(features, theta=theta)
    seqs = space.all_sequences()
    assert not features.is_decomposable
    assert np.allclose(
        energy(torch.as_tensor(seqs)).detach().numpy(), features.costs(theta, seqs), atol=EXACT_TOL
    )
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        LinearEnergy(features, theta=np.zeros(4))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_neural_energies_are_nonnegative_with_shape_n(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    space = SequenceSpace(5, 4)
    seqs = torch.as_tensor(np.random.default_rng(0).integers(0, 5, size=(64, 4)))
    cnn = CNNEnergy(5, 4, embed_dim=8, filter_sizes=(1, 2, 3, 9), num_filters=(4, 4, 4, 4), dtype=dtype)
    assert len(cnn.convs) == 3  # the width-9 filter is wider than T=4 and dropped
    auto = AutoencoderEnergy(5, 4, embed_dim=4, code_dim=3, dtype=dtype)
    default_cnn = CNNEnergy(space.n_items, space.horizon, dtype=dtype)
    for energy in (cnn, auto, default_cnn):
        energy.eval()
        for scale in (1.0, 50.0):  # large weights push the pre-activations far negative
            with torch.no_grad():
                for param in energy.parameters():
                    param.mul_(scale)
            values = energy(seqs)
            assert values.shape == (64,) and values.dtype == dtype
            assert torch.isfinite(values).all() and (values >= 0).all()
    cnn.eval()
    assert torch.equal(cnn(seqs), cnn(seqs))  # no dropout in eval mode


def test_cnn_energy_without_softplus_is_the_signed_head() -> None:
    """nonnegative=False switches the softplus off: same parameters, softplus(signed) = default, and
    the signed output takes both signs (a classifier logit ℓ = −D needs that)."""
    torch.manual_seed(1)
    seqs = torch.as_tensor(np.random.default_rng(1).integers(0, 5, size=(64, 4)))
    kwargs = dict(embed_dim=6, filter_sizes=(1, 2), num_filters=(3, 3), dtype=torch.float64)
    signed = CNNEnergy(5, 4, nonnegative=False, **kwargs).eval()
    default = CNNEnergy(5, 4, **kwargs).eval()
    default.load_state_dict(signed.state_dict())
    assert default.nonnegative and not signed.nonnegative
    with torch.no_grad():
        raw = signed(seqs)
        assert torch.allclose(torch.nn.functional.softplus(raw), default(seqs), atol=EXACT_TOL, rtol=0)
        signed.head.bias.fill_(-float(raw.mean()))  # centre the head: both signs appear
        centred = signed(seqs)
    assert (centred < 0).any() and (centred > 0).any()
    with pytest.raises(ValueError, match="nonnegative must be True or False"):
        CNNEnergy(5, 4, nonnegative=1, **kwargs)


def test_energies_reject_bad_input() -> None:
    space = SequenceSpace(3, 2)
    features = StateActionFeatures(space, "last")
    energies = [
        TabularEnergy(3, 2),
        LinearEnergy(features),
        CNNEnergy(3, 2, embed_dim=2, filter_sizes=(1, 2), num_filters=(2, 2)),
        AutoencoderEnergy(3, 2, embed_dim=2, code_dim=2),
    ]
    for energy in energies:
        with pytest.raises(ValueError, match=r"item id 3 is outside 0\.\.2"):
            energy(torch.tensor([[0, 3]]))
        with pytest.raises(ValueError, match=r"shape \(N, 2\), got \(1, 3\)"):
            energy(torch.tensor([[0, 1, 1]]))
        with pytest.raises(ValueError, match="integer item ids"):
            energy(torch.tensor([[0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"shape \(V\^T,\) = \(9,\)"):
        TabularEnergy(3, 2, values=np.zeros(8))
    with pytest.raises(ValueError, match="wider than the horizon"):
        CNNEnergy(3, 2, filter_sizes=(3, 4), num_filters=(1, 1))
    with pytest.raises(ValueError, match="same length"):
        CNNEnergy(3, 2, filter_sizes=(1, 2), num_filters=(1,))


CONSTRUCTORS = {
    "tabular": TabularPolicy,
    "gru": GRUPolicy,
    "lstm": lambda V, T, **kw: GRUPolicy(V, T, cell="lstm", **kw),
    "sasrec": lambda V, T, **kw: SASRecPolicy(V, T, embed_dim=4, n_heads=2, inner_dim=4, **kw),
    "tabular_energy": TabularEnergy,
    "cnn": lambda V, T, **kw: CNNEnergy(V, T, embed_dim=2, filter_sizes=(1,), num_filters=(2,), **kw),
    "autoencoder": AutoencoderEnergy,
}
BAD_SIZES = [(1, 2, r"n_items must be at least 2 .*use V >= 2"), (0, 2, "n_items must be a positive integer")]
BAD_SIZES += [
    (True, 2, "n_items"),
    (2.5, 2, "n_items"),
    (3, 0, "horizon must be a positive"),
    (3, 1.0, "horizon"),
]


@pytest.mark.parametrize("kind", list(CONSTRUCTORS))
@pytest.mark.parametrize(("V", "T", "match"), BAD_SIZES)
def test_constructors_refuse_bad_sizes(kind: str, V: object, T: object, match: str) -> None:
    """Every generator and energy refuses V < 2, T < 1, bools and non-integers, naming the argument."""
    with pytest.raises(ValueError, match=match):
        CONSTRUCTORS[kind](V, T)
    assert CONSTRUCTORS[kind](2, 1).n_items == 2  # the smallest valid sizes are accepted


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: GRUPolicy(3, 2, hidden_dim=0), r"hidden_dim must be a positive integer .*got 0"),
        (lambda: GRUPolicy(3, 2, embed_dim=0), r"embed_dim must be a positive integer .*got 0"),
        (lambda: SASRecPolicy(3, 2, n_layers=0), "n_layers must be a positive integer"),
        (lambda: SASRecPolicy(3, 2, n_heads=0), "n_heads must be a positive integer"),
        (lambda: SASRecPolicy(3, 2, inner_dim=0), "inner_dim must be a positive integer"),
        (lambda: SASRecPolicy(3, 2, dropout=1.0), r"dropout=1.0 must lie in \[0, 1\)"),
        (lambda: SASRecPolicy(3, 2, dropout="x"), "dropout must be a finite number"),
        (lambda: CNNEnergy(3, 2, embed_dim=0), "embed_dim must be a positive integer"),
        (lambda: CNNEnergy(3, 2, filter_sizes=(1, 0), num_filters=(2, 2)), r"filter_sizes\[1\]"),
        (lambda: CNNEnergy(3, 2, filter_sizes=(1,), num_filters=(0,)), r"num_filters\[0\]"),
        (lambda: CNNEnergy(3, 2, dropout=float("nan")), "dropout must be a finite number"),
        (lambda: AutoencoderEnergy(3, 2, code_dim=0), "code_dim must be a positive integer"),
        (lambda: AutoencoderEnergy(3, 2, embed_dim=-1), "embed_dim must be a positive integer"),
        (lambda: GANGCLDiscriminator(TabularEnergy(2, 2), init_log_z=float("inf")), "init_log_z"),
        (lambda: SeqGANClassifier(TabularPolicy(2, 2)), "body must be a SequenceEnergy, got TabularPolicy"),
    ],
)
def test_constructors_refuse_bad_widths(build, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("kind", ["tabular", "gru", "sasrec"])
@pytest.mark.parametrize("n", [2.5, -1, 0, True, "3"])
def test_sample_names_n_for_every_generator(kind: str, n: object) -> None:
    policy = CONSTRUCTORS[kind](3, 2)
    with pytest.raises(ValueError, match=rf"\bn must be a positive integer .*got {n!r}"):
        policy.sample(n)


@pytest.mark.parametrize(
    ("bad_row", "match"),
    [
        ([0.0, float("nan"), 1.0], r"logits row 2 of 4 contains NaN"),
        ([0.0, float("inf"), 1.0], r"logits row 2 of 4 contains \+inf"),
        ([-float("inf")] * 3, r"logits row 2 of 4 is all -inf.*at least one finite logit"),
    ],
)
def test_sample_categorical_names_the_bad_row(bad_row: list[float], match: str) -> None:
    logits = torch.zeros(4, 3, dtype=torch.float64)
    logits[2] = torch.tensor(bad_row)
    logits[3, 0] = -float("inf")  # a partly masked row is fine
    with pytest.raises(ValueError, match=match):
        sample_categorical(logits)
    logits[2] = 0.0
    assert sample_categorical(logits, torch.Generator().manual_seed(0)).shape == (4,)


# --- losses -------------------------------------------------------------------------------------------
def test_ebgan_discriminator_loss_matches_hand_formula() -> None:
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=6), rng.normal(loc=1.0, size=9)
    m = 1.3
    loss = ebgan_discriminator_loss(torch.as_tensor(real), torch.as_tensor(fake), margin=m)
    assert abs(float(loss) - (real.mean() + np.maximum(m - fake, 0).mean())) <= EXACT_TOL
    wr, wf = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(9))
    weighted = ebgan_discriminator_loss(
        torch.as_tensor(real),
        torch.as_tensor(fake),
        margin=m,
        real_weights=torch.as_tensor(wr),
        fake_weights=torch.as_tensor(wf),
    )
    assert abs(float(weighted) - (wr @ real + wf @ np.maximum(m - fake, 0))) <= EXACT_TOL


def test_margin_switches_off_fake_energies_above_m() -> None:
    fake = torch.tensor([0.5, 2.5, 7.0], dtype=torch.float64, requires_grad=True)
    real = torch.tensor([0.1, 0.2], dtype=torch.float64, requires_grad=True)
    loss = ebgan_discriminator_loss(real, fake, margin=2.0)
    g_real, g_fake = torch.autograd.grad(loss, (real, fake))
    assert g_fake.tolist() == [-1 / 3, 0.0, 0.0]  # only the fake energy below m is pushed up
    assert g_real.tolist() == [0.5, 0.5]
    higher = ebgan_discriminator_loss(real, fake.detach() + torch.tensor([0.0, 5.0, 1.0]), margin=2.0)
    assert float(higher.detach()) == float(loss.detach())  # energies already above m do not count


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), float("-inf")])
def test_check_margin_rejects_non_positive_or_non_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="positive finite"):
        check_margin(bad)
    with pytest.raises(ValueError, match="positive finite"):
        ebgan_discriminator_loss(torch.zeros(2), torch.zeros(2), margin=bad)


def test_check_margin_accepts_positive_numbers() -> None:
    assert check_margin(1e-9) == 1e-9 and isinstance(check_margin(3), float)


def test_generator_objectives() -> None:
    rng = np.random.default_rng(1)
    energy, log_p = torch.as_tensor(rng.normal(size=5)), torch.as_tensor(-rng.random(5))
    p = torch.as_tensor(rng.dirichlet(np.ones(5)))
    mean = float(ebgan_generator_objective(energy, log_p, entropy_weight=0.5))
    assert abs(mean - float((energy + 0.5 * log_p).mean())) <= EXACT_TOL
    exact = float(ebgan_generator_objective(energy, log_p, weights=p))
    assert abs(exact - float((p * (energy + log_p)).sum())) <= EXACT_TOL
    assert abs(exact - float(maxent_q_step_objective(energy, log_p, weights=p))) <= EXACT_TOL
    c_step = maxent_c_step_objective(energy[:2], energy[2:])
    assert abs(float(c_step) - float(-energy[:2].mean() + energy[2:].mean())) <= EXACT_TOL
    prob = torch.tensor([0.2, 0.9])
    assert abs(float(gan_generator_objective(prob)) - float(torch.log(1 - prob).mean())) <= 1e-9
    hand = -(torch.log(prob[:1]).mean() + torch.log(1 - prob[1:]).mean())
    assert abs(float(gan_discriminator_loss(prob[:1], prob[1:])) - float(hand)) <= 1e-9


def test_policy_gradient_surrogate() -> None:
    log_p = torch.tensor([[-0.1, -0.2], [-0.3, -0.4], [-0.5, -0.6]], requires_grad=True)
    q = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], requires_grad=True)
    surrogate = policy_gradient_surrogate(log_p, q)
    assert abs(float(surrogate.detach()) - float((log_p * q).sum(1).mean().detach())) <= 1e-6
    grad_log_p, grad_q = torch.autograd.grad(surrogate, (log_p, q), allow_unused=True)
    assert torch.allclose(grad_log_p, q.detach() / 3)
    assert grad_q is None  # Q is a fixed weight
    with pytest.raises(ValueError, match=r"\(3, 2\) and q_values \(3, 1\) differ"):
        policy_gradient_surrogate(log_p, q[:, :1])


def test_seqgan_losses_match_eq_1_on_probabilities() -> None:
    """On logits ℓ, the SeqGAN loss is −(1) of D = σ(ℓ): equal to gan_discriminator_loss(σ(ℓ))."""
    rng = np.random.default_rng(2)
    real, fake = torch.as_tensor(rng.normal(size=5)), torch.as_tensor(rng.normal(size=7))
    by_logits = seqgan_discriminator_loss(real, fake)
    by_probs = gan_discriminator_loss(torch.sigmoid(real), torch.sigmoid(fake), eps=0.0)
    assert float(by_logits) == pytest.approx(float(by_probs), abs=EXACT_TOL)
    wr, wf = torch.as_tensor(rng.dirichlet(np.ones(5))), torch.as_tensor(rng.dirichlet(np.ones(7)))
    weighted = seqgan_discriminator_loss(real, fake, real_weights=wr, fake_weights=wf)
    hand = -(wr @ torch.log(torch.sigmoid(real)) + wf @ torch.log(1 - torch.sigmoid(fake)))
    assert float(weighted) == pytest.approx(float(hand), abs=EXACT_TOL)
    assert torch.allclose(seqgan_generator_reward(fake), torch.sigmoid(fake))
    # direction: raising real logits / lowering fake logits lowers the loss
    assert float(seqgan_discriminator_loss(real + 1, fake - 1)) < float(by_logits)


def test_gan_gcl_losses_match_the_discriminator_formula() -> None:
    """D = (e^{−c}/Z) / (e^{−c}/Z + p_G); D-loss = −E_data log D − E_G log(1 − D);
    generator loss E_G[log(1 − D) − log D] = E_G[c + log p_G] + log Z."""
    rng = np.random.default_rng(3)
    c_real, c_fake = torch.as_tensor(rng.normal(size=4)), torch.as_tensor(rng.normal(size=6))
    lp_real, lp_fake = torch.as_tensor(-rng.random(4) * 3), torch.as_tensor(-rng.random(6) * 3)
    log_z = 0.37
    e_real, e_fake = torch.exp(-c_real) / np.exp(log_z), torch.exp(-c_fake) / np.exp(log_z)
    d_real, d_fake = e_real / (e_real + lp_real.exp()), e_fake / (e_fake + lp_fake.exp())
    assert torch.allclose(torch.sigmoid(gan_gcl_logits(c_real, log_z, lp_real)), d_real, atol=EXACT_TOL)
    loss = gan_gcl_discriminator_loss(c_real, c_fake, log_z, real_log_p_g=lp_real, fake_log_p_g=lp_fake)
    hand = -(torch.log(d_real).mean() + torch.log(1 - d_fake).mean())
    assert float(loss) == pytest.approx(float(hand), abs=EXACT_TOL)
    gen = gan_gcl_generator_loss(c_fake, lp_fake, log_z)
    by_d = (torch.log(1 - d_fake) - torch.log(d_fake)).mean()
    assert float(gen) == pytest.approx(float(by_d), abs=EXACT_TOL)
    assert float(gen) == pytest.approx(float((c_fake + lp_fake).mean()) + log_z, abs=EXACT_TOL)
    # direction: lowering real costs and raising fake costs lowers the D-loss
    lower = gan_gcl_discriminator_loss(
        c_real - 1, c_fake + 1, log_z, real_log_p_g=lp_real, fake_log_p_g=lp_fake
    )
    assert float(lower) < float(loss)
