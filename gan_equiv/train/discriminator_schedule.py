"""Many discriminator steps in one call: SeqGAN's D schedule at the device's pace, for any objective.

SeqGAN trains D for thousands of minibatches per adversarial round. :func:`run_discriminator_steps`
takes ``n_steps`` optimizer steps of any member's discriminator loss (a callable, e.g. an
:class:`~gan_equiv.train.objectives.Objective`'s ``discriminator_loss`` bound to its discriminator),
each on one minibatch of real sequences and one of p_G samples drawn from pools that stay on the
discriminator's device. :func:`run_energy_steps` is the EBGAN case, eq. (3),

    L(D) = E_data D(S) + E_G [m − D(S)]^+        (D *minimizes* it; m > 0 the margin).

The steps are sequential (each starts from the previous parameters), so a Python loop over steps
remains, but nothing in it waits for the host: all minibatch indices are drawn at once before the
loop and per-step metrics are written into device tensors. Options: ``bf16`` autocast on CUDA (the
losses and metrics stay float32), ``compile`` (``torch.compile`` of the loss; measured in
benchmarks/bench_discriminator.py, never required) and ``split`` (this rank's rows of every
minibatch in a data-parallel job, :class:`~gan_equiv.train.batch_split.BatchSplit`).

:func:`seqgan_schedule_steps` counts SeqGAN's schedule: per pool of ``d_pool`` fresh generator
samples, ``d_epochs`` epochs over the 2·d_pool real and generated rows in minibatches of
``batch_size`` rows (half real, half generated), i.e. d_epochs·⌈2·d_pool / batch_size⌉ steps.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gan_equiv.checks import non_negative_float, positive_int
from gan_equiv.losses import check_margin, ebgan_discriminator_loss
from gan_equiv.models.energies import SequenceEnergy
from gan_equiv.train.batch_split import BatchSplit

#: ``loss(real (B, T), fake (B, T), real_extra (B,) | None, fake_extra (B,) | None)`` →
#: (0-d loss to *minimize*, {name: detached 0-d stat}); the same names at every step.
DiscriminatorLoss = Callable[[Tensor, Tensor, Tensor | None, Tensor | None], tuple[Tensor, dict[str, Tensor]]]


@dataclass(frozen=True)
class DiscriminatorStepStats:
    """Per-step metrics of :func:`run_discriminator_steps`, all on the device (no host sync).

    Attributes:
        loss: (S,) float32, the loss of each step before its update.
        stats: {name: (S,) float32} the loss callable's stats per step (shard means on W ranks).
    """

    loss: Tensor
    stats: dict[str, Tensor]

    def means(self) -> dict[str, Tensor]:
        """Mean over the steps of the loss (``d_loss``) and of every stat: {name: 0-d tensor}."""
        return {"d_loss": self.loss.mean(), **{k: v.mean() for k, v in self.stats.items() if k != "d_loss"}}


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


def seqgan_schedule_steps(*, d_pool: int, d_epochs: int, batch_size: int) -> int:
    """Steps per pool of SeqGAN's schedule: d_epochs·⌈2·d_pool / batch_size⌉ (each step: batch_size
    rows, half of them real, half generated; SeqGAN's 10,000 + 10,000 rows in batches of 64)."""
    d_pool = positive_int(d_pool, "d_pool", hint="fresh generator samples per pool, e.g. 10000")
    d_epochs = positive_int(d_epochs, "d_epochs", hint="epochs over each pool, e.g. 3")
    batch_size = positive_int(batch_size, "batch_size", hint="rows per minibatch, half real and half fake")
    return d_epochs * -(-2 * d_pool // batch_size)


def _autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _pool(name: str, pool: Tensor, extra: Tensor | None) -> None:
    if pool.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape (0, T)); give at least one sequence")
    if extra is not None and extra.shape != (pool.shape[0],):
        raise ValueError(
            f"{name}_extra must have shape ({pool.shape[0]},), one value per {name} row; "
            f"got {tuple(extra.shape)}"
        )


def _indices(n_pool: int, n_steps: int, batch_size: int, shuffle: bool, generator, device) -> Tensor:
    if shuffle:
        return epoch_indices(n_pool, n_steps, batch_size, generator, device)
    if n_pool != n_steps * batch_size:
        raise ValueError(
            f"shuffle=False walks the pool in order and needs exactly n_steps·batch_size = "
            f"{n_steps * batch_size} rows, got {n_pool}; pass shuffle=True for epochs over any pool"
        )
    return torch.arange(n_pool, device=device).view(n_steps, batch_size)


def run_discriminator_steps(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    real: Tensor,
    fake: Tensor,
    *,
    loss: DiscriminatorLoss,
    n_steps: int,
    batch_size: int,
    generator: torch.Generator | None = None,
    shuffle: bool = True,
    real_extra: Tensor | None = None,
    fake_extra: Tensor | None = None,
    grad_clip: float = 0.0,
    bf16: bool = True,
    compile: bool = False,
    split: BatchSplit | None = None,
) -> DiscriminatorStepStats:
    """``n_steps`` optimizer steps of ``loss`` (minimized by the discriminator ``module``, whatever the
    objective: eq. 3, SeqGAN's log-loss (1), GAN-GCL's) on minibatches of ``batch_size`` rows of
    ``real`` (N_r, T) and as many of ``fake`` (N_f, T).

    With ``shuffle`` the minibatches walk random permutations of each pool (epochs), drawn with
    ``generator`` before the first step; without it each pool must hold exactly n_steps·B rows,
    taken in order. ``real_extra`` / ``fake_extra`` (N_r,), (N_f,) are per-row values handed to
    ``loss`` with their rows (GAN-GCL's log p_G). ``grad_clip`` > 0 clips the global gradient norm
    (no host sync); ``bf16`` autocasts on CUDA only. The pools must already be validated and on
    the module's device. ``split`` gives this rank its rows of every minibatch and scales the
    backward (DDP averages gradients over ranks), so W ranks take the same steps as one process.
    Returns per-step metrics as device tensors; read them once at the end, not per step.
    """
    n_steps = positive_int(n_steps, "n_steps", hint="optimizer steps to take")
    batch_size = positive_int(batch_size, "batch_size", hint="sequences per minibatch and side")
    grad_clip = non_negative_float(grad_clip, "grad_clip", hint="0 switches clipping off")
    split = split or BatchSplit(None)
    _pool("real", real, real_extra)
    _pool("fake", fake, fake_extra)
    dev = real.device
    idx_r = _indices(real.shape[0], n_steps, batch_size, shuffle, generator, dev)  # (S, B)
    idx_f = _indices(fake.shape[0], n_steps, batch_size, shuffle, generator, dev)  # (S, B)
    step_fn = torch.compile(loss) if compile else loss
    params = [p for p in module.parameters() if p.requires_grad]
    losses = torch.empty(n_steps, device=dev)
    names: list[str] = []
    table = torch.empty(0, device=dev)
    n_local = 0
    module.train()
    for s in range(n_steps):  # sequential updates; no .item(), no host-side branching on values
        rows_r, n_local = split.rows(idx_r[s])  # this rank's rows of the global minibatch
        rows_f, _ = split.rows(idx_f[s])
        extras = [None if x is None else x[rows] for x, rows in ((real_extra, rows_r), (fake_extra, rows_f))]
        with _autocast(dev, bf16):
            value, stats = step_fn(real[rows_r], fake[rows_f], *extras)
        optimizer.zero_grad(set_to_none=True)
        split.backward(value, n_local, batch_size)
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, grad_clip, foreach=True)
        optimizer.step()
        if s == 0:
            names = list(stats)
            table = torch.empty(n_steps, len(names), device=dev)
        losses[s] = value.detach()
        if names:
            table[s] = torch.stack([stats[k].detach().float() for k in names])
    per_step = {k: table[:, i] for i, k in enumerate(names)}
    if split.ctx is not None:  # global-batch means over the ranks (one all-reduce of the step means)
        step_means = {"d_loss": losses.mean(), **{k: v.mean() for k, v in per_step.items()}}
        means = split.reduce(step_means, n_local, batch_size)
        losses = means.pop("d_loss").float().expand(n_steps)
        per_step = {k: v.float().expand(n_steps) for k, v in means.items()}
    return DiscriminatorStepStats(losses, per_step)


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
    of ``batch_size`` rows of the pools ``real`` (N_r, T) and ``fake`` (N_f, T): the EBGAN case of
    :func:`run_discriminator_steps`, with one energy forward per step on the concatenated (2B, T) batch.

    Minibatches walk through random permutations of each pool (epochs), drawn with ``generator``
    before the first step. The pools are validated and moved to the energy's device once. Returns
    the per-step metrics as device tensors; call ``.cpu()`` once at the end, not per step.
    """
    positive_int(n_steps, "n_steps", hint="optimizer steps to take")
    positive_int(batch_size, "batch_size", hint="sequences per minibatch and side")
    margin = check_margin(margin)
    if not isinstance(energy, SequenceEnergy):
        raise ValueError(f"energy must be a SequenceEnergy, got {type(energy).__name__}")
    real, fake = energy.check_sequences(real), energy.check_sequences(fake)  # once, not per step

    def eq3(real_b: Tensor, fake_b: Tensor, *_: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        d = energy(torch.cat([real_b, fake_b])).float()  # (2B,)
        real_e, fake_e = d[: real_b.shape[0]], d[real_b.shape[0] :]
        loss = ebgan_discriminator_loss(real_e, fake_e, margin=margin)  # minimized by D
        stats = {"energy_real": real_e.detach().mean(), "energy_fake": fake_e.detach().mean()}
        return loss, stats | {"below": (fake_e.detach() < margin).float().mean()}

    out = run_discriminator_steps(
        energy, optimizer, real, fake, loss=eq3, n_steps=n_steps, batch_size=batch_size,
        generator=generator, grad_clip=grad_clip, bf16=bf16, compile=compile,
    )  # fmt: skip
    st = out.stats
    return EnergyStepStats(out.loss, st["energy_real"], st["energy_fake"], st["below"])
