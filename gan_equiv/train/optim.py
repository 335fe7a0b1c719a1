"""Optimizer plumbing of the training steps: Adam from a config table, clipping, train/eval modes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from gan_equiv.train.config_types import OptimConfig


def clip_gradients(module: torch.nn.Module, max_norm: float) -> None:
    """Clip the global gradient norm of ``module`` to ``max_norm`` (0: no clipping), one foreach kernel."""
    if max_norm > 0:
        torch.nn.utils.clip_grad_norm_(module.parameters(), max_norm, foreach=True)


def adam(module: torch.nn.Module, optim: OptimConfig) -> torch.optim.Adam:
    """Adam over the parameters of ``module`` (a GAN-GCL discriminator's log Z included) with the
    settings of an ``[*_optim]`` table; ``foreach=True`` updates all tensors in one batched kernel
    per operation (same arithmetic as the per-parameter loop)."""
    return torch.optim.Adam(
        module.parameters(),
        lr=optim.lr,
        betas=tuple(optim.betas),
        weight_decay=optim.weight_decay,
        foreach=True,
    )


@contextlib.contextmanager
def step_modes(*settings: tuple[torch.nn.Module, bool]) -> Iterator[None]:
    """Put each module in train (True) or eval (False) mode for one step, then restore its mode."""
    before = [(module, module.training) for module, _ in settings]
    for module, training in settings:
        module.train(training)
    try:
        yield
    finally:
        for module, training in before:
            module.train(training)
