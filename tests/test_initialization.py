"""SeqGAN's generator initialization: every parameter N(0, std²)."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import MC_Z_SCORE

from gan_equiv.models.initialization import normal_init_
from gan_equiv.models.policies import GRUPolicy


def test_every_parameter_is_drawn_normal_with_the_given_std() -> None:
    policy = GRUPolicy(200, 5, embed_dim=32, hidden_dim=32, cell="lstm")
    normal_init_(policy, std=0.1, generator=torch.Generator().manual_seed(0))
    for name, parameter in policy.named_parameters():
        values = parameter.detach().double().flatten()
        n = values.numel()
        # mean ~ N(0, σ²/n); sample variance ~ σ²(1 ± sqrt(2/n)) for normal draws
        assert abs(values.mean().item()) <= MC_Z_SCORE * 0.1 / math.sqrt(n), name
        z_var = (values.var().item() / 0.01 - 1) / math.sqrt(2 / n)
        assert abs(z_var) <= MC_Z_SCORE, f"{name}: variance z = {z_var:.2f}"


def test_a_negative_std_is_refused() -> None:
    with pytest.raises(ValueError, match=r"std must be a finite non-negative number .* got -1"):
        normal_init_(GRUPolicy(3, 2), std=-1)
