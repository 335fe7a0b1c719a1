"""The float32 sampler, the robustness of the generators' constructors and draws, and the batched
energy-step engine.

The float32 inverse CDF (``precision="float32"``) must return the float64 path's items: its
CDF terms carry a relative error of at most ρ = DRAW_RHO, so outside a band of 2ρ·F(1 − F) around
each edge the two agree, and inside it the float64 path redraws. Tested: the bound on ρ itself
(float32 softmax against float64), the total variation between the float32 law and the float64
one (exact, both laws computed) against ρ, identical items on seeded and on adversarial uniforms
(placed on the float64 edges), and the recheck rate.
"""

from __future__ import annotations

import pytest
import torch
from conftest import MC_Z_SCORE

import gan_equiv.models.policies as policies
from gan_equiv.losses import ebgan_discriminator_loss
from gan_equiv.models.energies import CNNEnergy
from gan_equiv.models.policies import (
    DRAW_BLOCK,
    DRAW_RHO,
    GRUPolicy,
    TabularPolicy,
    _draw_float32,
    draw_items,
    inverse_cdf_draw,
    sample_categorical,
)
from gan_equiv.train.discriminator_schedule import epoch_indices, run_energy_steps

F64 = torch.float64


def logits_cases():
    """(name, float32 logits (N, V)): flat, spread, peaked, masked (−inf), a V not a block multiple."""
    g = torch.Generator().manual_seed(0)
    masked = torch.randn(64, 300, generator=g) * 3
    masked[:, ::3] = -float("inf")
    return [
        ("flat", torch.randn(64, 2000, generator=g) * 0.1),
        ("spread", torch.randn(64, 2000, generator=g) * 4),
        ("peaked", torch.randn(64, 500, generator=g) * 15),
        ("masked", masked),
        ("tail", torch.randn(64, 3 * DRAW_BLOCK + 5, generator=g) * 2),
        ("tiny", torch.randn(64, 3, generator=g)),
    ]


# --- the float32 draw ------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "logits"), logits_cases())
def test_float32_softmax_error_is_within_rho(name, logits):
    """Every float32 softmax entry is within SOFTMAX_ERROR_UNITS·2^-24 (relative) of float64, up to
    one factor per row; DRAW_RHO adds the block sums and bounds it."""
    p32 = torch.softmax(logits, dim=-1).double()
    p64 = torch.softmax(logits.double(), dim=-1)
    big = p64 > 1e-30  # below, absolute errors are absorbed by the slack
    ratio = torch.where(big, p32 / torch.where(big, p64, 1.0), 1.0)
    common = (ratio * big).sum(dim=1, keepdim=True) / big.sum(dim=1, keepdim=True)
    rel = ((ratio / common - 1).abs() * big).amax()
    assert rel <= DRAW_RHO / 2, f"{name}: relative error {rel:.2e} vs ρ = {DRAW_RHO:.2e}"


@pytest.mark.parametrize(("name", "logits"), logits_cases())
def test_float32_law_within_rho_of_float64_in_total_variation(name, logits):
    """Exact laws: the float32 path without its recheck draws item i with probability q_i (its
    normalized block-CDF increments); TV(q, p64) ≤ ρ. With the recheck, the law is p64 itself."""
    p64 = torch.softmax(logits.double(), dim=-1)
    q = torch.softmax(logits, dim=-1).double()
    q = q / q.sum(dim=1, keepdim=True)
    tv = 0.5 * (q - p64).abs().sum(dim=1)
    assert tv.max() <= DRAW_RHO, f"{name}: TV {tv.max():.2e} > ρ = {DRAW_RHO:.2e}"


@pytest.mark.parametrize("static", [False, True])
@pytest.mark.parametrize(("name", "logits"), logits_cases())
def test_float32_draw_returns_the_float64_items(name, logits, static):
    """Seeded uniforms and adversarial ones (on and next to each row's float64 CDF edges)."""
    N, V = logits.shape
    u = torch.rand(N, 32, generator=torch.Generator().manual_seed(1), dtype=F64)
    cdf = torch.softmax(logits.double(), dim=-1).cumsum(dim=-1)
    picks = torch.randint(V, (N, 8), generator=torch.Generator().manual_seed(2))
    edges = (cdf.gather(1, picks) / cdf[:, -1:]).clamp(0, 1 - 2**-53)
    hard = torch.cat([edges, torch.nextafter(edges, torch.zeros_like(edges)), edges + 1e-9], dim=1)
    for uu in (u, hard.clamp(0, 1 - 2**-53)):
        exact, exact_lp = draw_items(logits, uu, precision="float64")
        items, lp = _draw_float32(logits, uu, static_recheck=static)
        if static:  # a fixed capacity per call: draw in small groups so that no row overflows it
            items = torch.cat([_draw_float32(logits[i : i + 1], uu[i : i + 1], static_recheck=True)[0]
                               for i in range(N)])  # fmt: skip
        assert torch.equal(items, exact), f"{name}: {(items != exact).sum()} draws differ"
        if not static:
            assert (lp - exact_lp).abs().max() <= 4 * DRAW_RHO


def test_recheck_rate_is_small():
    """About 0.7·ρ·V of the draws fall in a recheck band; at V = 5000 a few percent."""
    logits = torch.randn(4000, 5000, generator=torch.Generator().manual_seed(3))
    u = torch.rand(4000, 1, generator=torch.Generator().manual_seed(4), dtype=F64)
    calls = []
    original = policies._draw_float64
    try:
        policies._draw_float64 = lambda lg, uu: calls.append(lg.shape[0]) or original(lg, uu)
        policies._draw_float32(logits, u, static_recheck=False)
    finally:
        policies._draw_float64 = original
    rate = sum(calls) / 4000
    assert rate <= 2 * 0.7 * DRAW_RHO * 5000 + 0.01, f"recheck rate {rate:.3f}"


def test_float32_draws_follow_the_law():
    """Seeded z-test of the float32 sampler's frequencies against softmax in float64."""
    logits = torch.tensor([[2.0, 0.5, -1.0, 0.0, 1.0]]).repeat(40000, 1)
    u = torch.rand(40000, 1, generator=torch.Generator().manual_seed(5), dtype=F64)
    items, _ = inverse_cdf_draw(logits, u, precision="float32")
    p = torch.softmax(logits[0].double(), dim=0)
    freq = torch.bincount(items, minlength=5).double() / 40000
    z = (freq - p) / torch.sqrt(p * (1 - p) / 40000)
    assert z.abs().max() <= MC_Z_SCORE


def test_policy_sample_same_in_both_precisions():
    torch.manual_seed(0)
    policy = GRUPolicy(40, 5, embed_dim=4, hidden_dim=8)
    a = policy.sample(200, generator=torch.Generator().manual_seed(1))
    b = policy.sample(200, generator=torch.Generator().manual_seed(1), precision="float32")
    assert torch.equal(a, b)


# --- robustness ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("logits", "match"),
    [
        (torch.tensor([[0.0, float("nan")]]), "NaN"),
        (torch.tensor([[0.0, float("inf")]]), r"\+inf"),
        (torch.tensor([[0.0, 1.0], [-float("inf"), -float("inf")]]), "all -inf"),
        (torch.zeros(3), "shape"),
    ],
)
def test_sample_categorical_refuses_bad_logits(logits, match):
    with pytest.raises(ValueError, match=match):
        sample_categorical(logits)


def test_sample_categorical_accepts_partly_masked_rows():
    logits = torch.tensor([[-float("inf"), 0.0, -float("inf")]]).repeat(50, 1)
    assert (sample_categorical(logits, torch.Generator().manual_seed(0)) == 1).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(hidden_dim=0), "hidden_dim"),
        (dict(embed_dim=0), "embed_dim"),
        (dict(hidden_dim=2.5), "hidden_dim"),
        (dict(n_items=0), "n_items"),
        (dict(horizon=0), "horizon"),
        (dict(n_items=True), "n_items"),
    ],
)
def test_gru_policy_refuses_zero_sizes(kwargs, match):
    args = dict(n_items=4, horizon=3) | kwargs
    with pytest.raises(ValueError, match=match):
        GRUPolicy(args.pop("n_items"), args.pop("horizon"), **args)


def test_tabular_policy_refuses_bad_sizes():
    with pytest.raises(ValueError, match="n_items"):
        TabularPolicy(0, 2)
    with pytest.raises(ValueError, match="horizon"):
        TabularPolicy(2, 0)
    with pytest.raises(ValueError, match="init_scale"):
        TabularPolicy(2, 2, init_scale=-1.0)


@pytest.mark.parametrize("n", [2.5, 0, -3, True])
def test_sample_names_n(n):
    policy = TabularPolicy(2, 2)
    with pytest.raises(ValueError, match=r"\bn must be a positive integer"):
        policy.sample(n)


def test_bad_precision_is_refused():
    policy = TabularPolicy(2, 2)
    with pytest.raises(ValueError, match="precision"):
        policy.sample(2, precision="float16")


# --- batched energy steps (eq. 3) ------------------------------------------------------------------
def small_energy(seed: int) -> CNNEnergy:
    torch.manual_seed(seed)
    return CNNEnergy(7, 5, embed_dim=3, filter_sizes=(2, 3), num_filters=(3, 2), dropout=0.0, dtype=F64)


def test_energy_steps_equal_a_plain_loop():
    """Two routes to the same parameters: the engine vs a per-step loop with two forwards."""
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randint(7, (23, 5), generator=g), torch.randint(7, (17, 5), generator=g)
    S, B, m = 9, 6, 1.5
    fast, slow = small_energy(1), small_energy(1)
    opt_fast = torch.optim.Adam(fast.parameters(), lr=1e-2)
    opt_slow = torch.optim.Adam(slow.parameters(), lr=1e-2)
    stats = run_energy_steps(
        fast, opt_fast, real, fake, n_steps=S, batch_size=B, margin=m,
        generator=torch.Generator().manual_seed(3), grad_clip=0.5,
    )  # fmt: skip
    gen = torch.Generator().manual_seed(3)
    idx_r = epoch_indices(23, S, B, gen, "cpu")
    idx_f = epoch_indices(17, S, B, gen, "cpu")
    losses = []
    for s in range(S):
        real_e, fake_e = slow(real[idx_r[s]]).float(), slow(fake[idx_f[s]]).float()
        loss = ebgan_discriminator_loss(real_e, fake_e, margin=m)
        opt_slow.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(slow.parameters(), 0.5)
        opt_slow.step()
        losses.append(float(loss.detach()))
    for a, b in zip(fast.parameters(), slow.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    torch.testing.assert_close(stats.loss.double(), torch.tensor(losses, dtype=F64), atol=1e-6, rtol=0)
    assert stats.energy_real.shape == stats.fake_below_margin.shape == (S,)


def test_epoch_indices_visit_every_row_once_per_epoch():
    idx = epoch_indices(10, 5, 4, torch.Generator().manual_seed(0), "cpu")  # 20 rows = 2 epochs
    flat = idx.reshape(-1)
    assert torch.equal(flat[:10].sort().values, torch.arange(10))
    assert torch.equal(flat[10:].sort().values, torch.arange(10))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(n_steps=0), "n_steps"),
        (dict(batch_size=0), "batch_size"),
        (dict(margin=0.0), "margin"),
        (dict(grad_clip=-1.0), "grad_clip"),
    ],
)
def test_energy_steps_refuse_bad_options(kwargs, match):
    energy = small_energy(0)
    seqs = torch.zeros(4, 5, dtype=torch.long)
    args = dict(n_steps=2, batch_size=2, margin=1.0) | kwargs
    with pytest.raises(ValueError, match=match):
        run_energy_steps(energy, torch.optim.SGD(energy.parameters(), lr=0.1), seqs, seqs, **args)


def test_energy_steps_refuse_bad_pools():
    energy = small_energy(0)
    opt = torch.optim.SGD(energy.parameters(), lr=0.1)
    ok = torch.zeros(4, 5, dtype=torch.long)
    with pytest.raises(ValueError, match="outside"):
        run_energy_steps(energy, opt, ok, ok + 7, n_steps=1, batch_size=2, margin=1.0)
    with pytest.raises(ValueError, match="empty"):
        run_energy_steps(energy, opt, ok[:0], ok, n_steps=1, batch_size=2, margin=1.0)
