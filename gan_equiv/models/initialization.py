"""Parameter initializations other than PyTorch's defaults (the generator of SeqGAN's code)."""

from __future__ import annotations

import torch
from torch import nn

from gan_equiv.checks import non_negative_float


def normal_init_(
    module: nn.Module, *, std: float = 0.1, generator: torch.Generator | None = None
) -> nn.Module:
    """Draw every parameter of ``module`` i.i.d. N(0, std²) in place and return the module.

    SeqGAN's generator initialization: its code draws every weight, embedding and bias N(0, 0.1),
    where PyTorch's defaults draw embeddings N(0, 1) and recurrent weights U(±1/√hidden). MLE on
    SeqGAN's oracle tracks SeqGAN's published pretraining log with it (docs/results.md).
    """
    std = non_negative_float(std, "std", hint="SeqGAN uses 0.1")
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_(0.0, std, generator=generator)
    return module
