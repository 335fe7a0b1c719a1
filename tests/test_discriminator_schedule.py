"""The discriminator engine for any objective (gan_equiv.train.discriminator_schedule): two routes to
the same parameters (the engine vs a plain per-step loop) for SeqGAN's and GAN-GCL's losses, the
in-order walk, per-row extras, SeqGAN's step count, and input errors."""

from __future__ import annotations

import math

import pytest
import torch

from gan_equiv.models.energies import CNNEnergy
from gan_equiv.models.policies import GRUPolicy
from gan_equiv.train.discriminator_schedule import (
    DiscriminatorStepStats,
    epoch_indices,
    run_discriminator_steps,
    seqgan_schedule_steps,
)
from gan_equiv.train.objectives import make_objective

V, T = 7, 5
F64 = torch.float64


def _parts(name: str, seed: int = 0):
    torch.manual_seed(seed)
    policy = GRUPolicy(V, T, embed_dim=3, hidden_dim=4, dtype=F64)
    body = CNNEnergy(
        V, T, embed_dim=3, filter_sizes=(2, 3), num_filters=(3, 2), dropout=0.0, nonnegative=False, dtype=F64
    )
    objective = make_objective(name, margin=2.0)
    return policy, objective, objective.make_discriminator(body)


@pytest.mark.parametrize("name", ["seqgan", "gan_gcl", "ebgan"])
def test_engine_equals_a_plain_loop_for_each_objective(name: str) -> None:
    """Same minibatches (same generator), same optimizer: the engine's parameters and per-step
    losses are those of a per-step loop calling the objective's loss with log p_G computed afresh."""
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randint(V, (23, T), generator=g), torch.randint(V, (17, T), generator=g)
    S, B = 6, 5
    policy, objective, fast = _parts(name)
    _, _, slow = _parts(name)
    opt_fast, opt_slow = (
        torch.optim.Adam(fast.parameters(), lr=1e-2),
        torch.optim.Adam(slow.parameters(), lr=1e-2),
    )
    with torch.no_grad():
        real_lp, fake_lp = policy.log_prob(real), policy.log_prob(fake)
    extras = (real_lp, fake_lp) if objective.needs_log_p_g else (None, None)

    def loss(r, f, r_lp, f_lp):
        lp = None if r_lp is None else (r_lp, f_lp)
        return objective.discriminator_loss(fast, r, f, policy, log_p_g=lp)

    stats = run_discriminator_steps(
        fast, opt_fast, real, fake, loss=loss, n_steps=S, batch_size=B, grad_clip=0.5,
        generator=torch.Generator().manual_seed(3), real_extra=extras[0], fake_extra=extras[1],
    )  # fmt: skip
    gen = torch.Generator().manual_seed(3)
    idx_r, idx_f = epoch_indices(23, S, B, gen, "cpu"), epoch_indices(17, S, B, gen, "cpu")
    losses = []
    for s in range(S):
        value, _ = objective.discriminator_loss(slow, real[idx_r[s]], fake[idx_f[s]], policy)
        opt_slow.zero_grad()
        value.backward()
        torch.nn.utils.clip_grad_norm_(slow.parameters(), 0.5)
        opt_slow.step()
        losses.append(float(value.detach()))
    for a, b in zip(fast.parameters(), slow.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    torch.testing.assert_close(stats.loss.double(), torch.tensor(losses, dtype=F64), atol=1e-6, rtol=0)
    assert {"d_acc", "d_gap"} <= stats.stats.keys() and stats.stats["d_acc"].shape == (S,)
    means = stats.means()
    assert float(means["d_loss"]) == pytest.approx(sum(losses) / S, abs=1e-6)


def test_in_order_walk_and_per_row_extras() -> None:
    """shuffle=False: step s sees rows s·B … s·B + B − 1 of each pool, with their extras."""
    real = torch.arange(12).remainder(V).view(6, 2).repeat(1, 3)[:, :T]
    fake = real.flip(0)
    seen: list[tuple[list[int], list[float]]] = []
    module = torch.nn.Linear(1, 1)

    def loss(r, f, r_x, f_x):
        seen.append((r[:, 0].tolist(), f_x.tolist()))
        return module.weight.sum() * 0 + r.float().mean(), {"d_gap": torch.zeros(())}

    extra = torch.arange(6, dtype=torch.float32)
    run_discriminator_steps(
        module, torch.optim.SGD(module.parameters(), lr=0.1), real, fake, loss=loss, n_steps=3,
        batch_size=2, shuffle=False, real_extra=extra, fake_extra=-extra,
    )  # fmt: skip
    assert [r for r, _ in seen] == [real[i : i + 2, 0].tolist() for i in (0, 2, 4)]
    assert [x for _, x in seen] == [[-0.0, -1.0], [-2.0, -3.0], [-4.0, -5.0]]


def test_seqgan_schedule_step_count() -> None:
    assert seqgan_schedule_steps(d_pool=10000, d_epochs=3, batch_size=64) == 3 * 313  # SeqGAN: 939 per pool
    assert seqgan_schedule_steps(d_pool=32, d_epochs=1, batch_size=64) == 1
    assert seqgan_schedule_steps(d_pool=33, d_epochs=2, batch_size=64) == 2 * math.ceil(66 / 64)
    for kwargs, match in [
        ({"d_pool": 0, "d_epochs": 3, "batch_size": 64}, "d_pool"),
        ({"d_pool": 10, "d_epochs": 0, "batch_size": 64}, "d_epochs"),
        ({"d_pool": 10, "d_epochs": 3, "batch_size": -2}, "batch_size"),
    ]:
        with pytest.raises(ValueError, match=match):
            seqgan_schedule_steps(**kwargs)


def test_engine_refuses_bad_pools_and_options() -> None:
    module = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    seqs = torch.zeros(4, T, dtype=torch.long)

    def loss(r, f, *_):
        return module.weight.sum(), {}

    def call(real=seqs, fake=seqs, **kw):
        args = {"loss": loss, "n_steps": 2, "batch_size": 2} | kw
        return run_discriminator_steps(module, opt, real, fake, **args)

    assert isinstance(call(), DiscriminatorStepStats)
    with pytest.raises(ValueError, match="real is empty"):
        call(real=seqs[:0])
    with pytest.raises(ValueError, match=r"fake_extra must have shape \(4,\)"):
        call(fake_extra=torch.zeros(3))
    with pytest.raises(ValueError, match=r"shuffle=False.*needs exactly n_steps·batch_size = 6 rows, got 4"):
        call(n_steps=3, shuffle=False)
    with pytest.raises(ValueError, match="n_steps"):
        call(n_steps=0)
    with pytest.raises(ValueError, match="grad_clip"):
        call(grad_clip=-1.0)
