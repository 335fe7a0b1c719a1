"""Many energy (discriminator) steps of eq. (3) in one call: SeqGAN's D schedule at the device's pace.

SeqGAN trains D for thousands of minibatches per adversarial round. Each step here minimizes the
EBGAN loss of eq. (3),

    L(D) = E_data D(S) + E_G [m − D(S)]^+        (D *minimizes* it; m > 0 the margin),

on one minibatch of real sequences and one of p_G samples, both drawn from pools that stay on the
energy's device. The steps are sequential (each starts from the previous parameters), so a Python
loop over steps remains, but nothing in it waits for the host: all minibatch indices are drawn at
once before the loop, per-step metrics are written into device tensors, and the one energy
forward per step runs on the concatenated (2B, T) batch. Options: ``bf16`` autocast on CUDA (the
loss and metrics stay float32) and ``compile`` (``torch.compile`` of the forward + loss; measured
in benchmarks/bench_discriminator.py, never required).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import Tensor

from gan_equiv.checks import non_negative_float, positive_int
from gan_equiv.losses import check_margin, ebgan_discriminator_loss
from gan_equiv.models.energies import SequenceEnergy


@dataclass(frozen=True)
class EnergyStepStats:
    """Per-step metrics of :func:`run_energy_steps`, all on the energy's device (no host sync)."""

    loss: Tensor  # (S,) float32: L(D) of eq. (3) before each step's update
    energy_real: Tensor  # (S,) float32: mean D over the real minibatch
    energy_fake: Tensor  # (S,) float32: mean D over the p_G minibatch
    fake_below_margin: Tensor  # (S,) float32: share of p_G sequences with D < m


def epoch_indices(n_pool: int, n_steps: int, batch_size: int, generator, device) -> Tensor:
    """Minibatch rows (S, B) int64: consecutive random permutations of the pool (epochs, SeqGAN's
    order), cut into S minibatches of B; drawn at once on ``device``."""
    need = n_steps * batch_size
    perms = [
        torch.randperm(n_pool, generator=generator, device=generator.device if generator else "cpu")
        for _ in range(-(-need // n_pool))
    ]
    return torch.cat(perms)[:need].view(n_steps, batch_size).to(device)


def _autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _loss_and_stats(energy: SequenceEnergy, real: Tensor, fake: Tensor, margin: float):
    """Eq. (3) on one (real, fake) minibatch pair with one forward over their concatenation."""
    d = energy(torch.cat([real, fake])).float()  # (2B,)
    real_e, fake_e = d[: real.shape[0]], d[real.shape[0] :]
    loss = ebgan_discriminator_loss(real_e, fake_e, margin=margin)
    stats = torch.stack([real_e.mean(), fake_e.mean(), (fake_e < margin).float().mean()])
    return loss, stats.detach()


def run_energy_steps(
    energy: SequenceEnergy,
    optimizer: torch.optim.Optimizer,
    real: Tensor,
    fake: Tensor,
    *,
    n_steps: int,
    batch_size: int,
    margin: float,
    generator: torch.Generator | None = None,
    grad_clip: float = 0.0,
    bf16: bool = True,
    compile: bool = False,
) -> EnergyStepStats:
    """``n_steps`` optimizer steps of eq. (3) (D minimizes E_data D + E_G [m − D]^+) on minibatches
    of ``batch_size`` rows of the pools ``real`` (N_r, T) and ``fake`` (N_f, T).

    Minibatches walk through random permutations of each pool (epochs), drawn with ``generator``
    before the first step. The pools are validated and moved to the energy's device once. Returns
    the per-step metrics as device tensors; call ``.cpu()`` once at the end, not per step.
    ``grad_clip`` > 0 clips the global gradient norm (no host sync); ``bf16`` autocasts on CUDA only.
    """
    n_steps = positive_int(n_steps, "n_steps", hint="optimizer steps to take")
    batch_size = positive_int(batch_size, "batch_size", hint="sequences per minibatch and side")
    margin = check_margin(margin)
    grad_clip = non_negative_float(grad_clip, "grad_clip", hint="0 switches clipping off")
    if not isinstance(energy, SequenceEnergy):
        raise ValueError(f"energy must be a SequenceEnergy, got {type(energy).__name__}")
    real, fake = energy.check_sequences(real), energy.check_sequences(fake)  # once, not per step
    for name, pool in (("real", real), ("fake", fake)):
        if pool.shape[0] == 0:
            raise ValueError(f"{name} is empty (shape (0, T)); give at least one sequence")
    dev = real.device
    idx_r = epoch_indices(real.shape[0], n_steps, batch_size, generator, dev)  # (S, B)
    idx_f = epoch_indices(fake.shape[0], n_steps, batch_size, generator, dev)  # (S, B)
    step_fn = torch.compile(_loss_and_stats) if compile else _loss_and_stats
    params = [p for p in energy.parameters() if p.requires_grad]
    losses = torch.empty(n_steps, device=dev)
    stats = torch.empty(n_steps, 3, device=dev)
    energy.train()
    for s in range(n_steps):  # sequential updates; no .item(), no host-side branching on values
        with _autocast(dev, bf16):
            loss, st = step_fn(energy, real[idx_r[s]], fake[idx_f[s]], margin)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, grad_clip, foreach=True)
        optimizer.step()
        losses[s] = loss.detach()
        stats[s] = st
    return EnergyStepStats(losses, stats[:, 0], stats[:, 1], stats[:, 2])
